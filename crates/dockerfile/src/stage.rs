//! The parsed file as stages: global ARGs, then one [`Stage`] per FROM.

use crate::error::ParseError;
use crate::instruction::{From, Instruction, from_node};
use crate::parser::{self, Directives};
use crate::shell::Lexer;

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// First physical line (1-based).
    pub line: usize,
    /// Last physical line, heredoc bodies included.
    pub end_line: usize,
    /// The joined logical line as written (continuations removed); Docker's history text.
    pub original: String,
    /// The typed instruction, unexpanded.
    pub instruction: Instruction,
}

/// A build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the file, from 0 (what `COPY --from=0` means).
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The FROM instruction, unexpanded (expand it with [`crate::Scope::expand_from`]).
    pub from: From,
    /// Line of the FROM.
    pub line: usize,
    /// The instructions after FROM.
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The file name used in errors.
    pub file: String,
    /// Parser directives.
    pub directives: Directives,
    /// ARG instructions before the first FROM (usable only in FROM lines).
    pub meta_args: Vec<Step>,
    /// The stages, in file order; never empty.
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// Parses a Dockerfile. `file` names it in errors; `src` is its content (invalid UTF-8 is
    /// replaced, a leading BOM dropped).
    pub fn parse(file: &str, src: &[u8]) -> Result<Dockerfile, ParseError> {
        let parsed = parser::parse(file, src)?;
        let mut df = Dockerfile {
            file: file.to_string(),
            directives: parsed.directives,
            meta_args: Vec::new(),
            stages: Vec::new(),
        };
        for node in &parsed.nodes {
            let err = |m: String| ParseError::new(file, node.start_line, node.end_line, m);
            let step = Step {
                line: node.start_line,
                end_line: node.end_line,
                original: node.original.clone(),
                instruction: from_node(node).map_err(err)?,
            };
            df.push(step).map_err(err)?;
        }
        if df.stages.is_empty() {
            return Err(ParseError::new(
                file,
                0,
                0,
                "dockerfile contains no stages to build",
            ));
        }
        Ok(df)
    }

    fn push(&mut self, step: Step) -> Result<(), String> {
        match step.instruction {
            // A repeated stage name is only a lint warning in Docker; the later stage wins.
            Instruction::From(from) => {
                self.stages.push(Stage {
                    index: self.stages.len(),
                    name: from.name.clone(),
                    from,
                    line: step.line,
                    steps: Vec::new(),
                });
            }
            _ => match self.stages.last_mut() {
                Some(stage) => stage.steps.push(step),
                None if matches!(step.instruction, Instruction::Arg(_)) => {
                    self.meta_args.push(step);
                }
                None => return Err("no build stage in current context".into()),
            },
        }
        Ok(())
    }

    /// The stages in file order (never empty).
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage named `name` (case-insensitive; the last one if the name repeats).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().rev().find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// The stage `--target` selects: the named one, or the last stage when `None`.
    pub fn target(&self, target: Option<&str>) -> Result<&Stage, ParseError> {
        let found = match target {
            None => self.stages.last(),
            Some(t) => self.stage_by_name(t),
        };
        found.ok_or_else(|| {
            ParseError::new(
                &self.file,
                0,
                0,
                format!(
                    "target stage {:?} could not be found",
                    target.unwrap_or_default()
                ),
            )
        })
    }

    /// The expander for this file's escape character.
    pub fn lexer(&self) -> Lexer {
        Lexer::new(self.directives.escape)
    }
}
