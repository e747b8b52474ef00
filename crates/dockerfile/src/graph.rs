//! Which stage needs which: FROM a stage, `COPY --from`, `RUN --mount=…,from=`. Docker resolves
//! names only to stages defined *earlier* (FROM a later name means an image; COPY from a later
//! stage is an error), so the graph is acyclic by construction; independent stages can be
//! built in parallel.

use std::collections::BTreeSet;

use crate::error::ParseError;
use crate::instruction::Instruction;
use crate::mount::check_from;
use crate::scope::{BuildArgs, Scope};
use crate::shell::Lexer;
use crate::stage::{Dockerfile, Stage};

/// What a stage or a `--from` refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageRef {
    /// Another stage, by index.
    Stage(usize),
    /// An image reference (to pull or find locally).
    Image(String),
    /// `scratch`: the empty base.
    Scratch,
}

/// The dependencies between a Dockerfile's stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    /// Each stage's expanded base.
    pub bases: Vec<StageRef>,
    /// Each stage's other sources (`COPY --from`, mounts), deduplicated, in first-use order.
    pub sources: Vec<Vec<StageRef>>,
}

impl StageGraph {
    /// Resolves every stage's base (FROM expanded with the global ARGs) and sources.
    pub fn build(df: &Dockerfile, args: &BuildArgs) -> Result<StageGraph, ParseError> {
        let global = Scope::global(df, args)?;
        let mut graph = StageGraph {
            bases: Vec::new(),
            sources: Vec::new(),
        };
        for stage in &df.stages {
            let err = |m: String| ParseError::new(&df.file, stage.line, stage.line, m);
            let from = global.expand_from(&stage.from).map_err(|e| err(e.0))?;
            graph.bases.push(resolve_base(df, stage.index, &from.image));
            graph.sources.push(stage_sources(df, stage)?);
        }
        Ok(graph)
    }

    /// The stages `index` needs directly (its base and its `--from` stages); empty for an
    /// index out of range.
    pub fn dependencies(&self, index: usize) -> BTreeSet<usize> {
        self.bases
            .get(index)
            .into_iter()
            .chain(self.sources.get(index).into_iter().flatten())
            .filter_map(|r| match r {
                StageRef::Stage(i) => Some(*i),
                _ => None,
            })
            .collect()
    }

    /// Every stage `target` needs, itself included, dependencies first.
    pub fn build_order(&self, target: usize) -> Vec<usize> {
        let mut seen = BTreeSet::new();
        let mut order = Vec::new();
        self.visit(target, &mut seen, &mut order);
        order
    }

    fn visit(&self, i: usize, seen: &mut BTreeSet<usize>, order: &mut Vec<usize>) {
        if i >= self.bases.len() || !seen.insert(i) {
            return;
        }
        for d in self.dependencies(i) {
            self.visit(d, seen, order);
        }
        order.push(i);
    }

    /// The stages `target` needs, grouped in waves: every stage of a wave depends only on
    /// earlier waves, so a wave's stages can be built in parallel.
    pub fn waves(&self, target: usize) -> Vec<Vec<usize>> {
        let order = self.build_order(target);
        let mut level = vec![0usize; self.bases.len()];
        let mut waves: Vec<Vec<usize>> = Vec::new();
        for &i in &order {
            let l = self
                .dependencies(i)
                .iter()
                .map(|&d| level[d] + 1)
                .max()
                .unwrap_or(0);
            level[i] = l;
            if waves.len() <= l {
                waves.resize(l + 1, Vec::new());
            }
            waves[l].push(i);
        }
        waves
    }
}

/// FROM: a stage defined earlier (case-insensitive), `scratch`, or an image.
fn resolve_base(df: &Dockerfile, index: usize, image: &str) -> StageRef {
    if image.eq_ignore_ascii_case("scratch") {
        return StageRef::Scratch;
    }
    df.stages[..index]
        .iter()
        .rev()
        .find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(image))
        })
        .map_or_else(
            || StageRef::Image(image.to_string()),
            |s| StageRef::Stage(s.index),
        )
}

fn stage_sources(df: &Dockerfile, stage: &Stage) -> Result<Vec<StageRef>, ParseError> {
    let mut out = Vec::new();
    for step in &stage.steps {
        let err = |m: String| ParseError::new(&df.file, step.line, step.end_line, m);
        let froms: Vec<String> = match &step.instruction {
            Instruction::Copy(c) => c.from.iter().cloned().collect(),
            Instruction::Run(r) => r
                .mount_specs
                .iter()
                .filter_map(|spec| check_from(spec).ok().flatten())
                .collect(),
            _ => Vec::new(),
        };
        for from in &froms {
            let r = resolve_from(df, stage, from).map_err(err)?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// `--from=`: no variables allowed; a number is a stage index, a known name a stage, anything
/// else an image. The stage must come before the current one.
fn resolve_from(df: &Dockerfile, stage: &Stage, from: &str) -> Result<StageRef, String> {
    let unexpanded = Lexer::new(df.directives.escape)
        .expand_word(from, &std::collections::BTreeMap::new())
        .map_err(|e| e.0)?;
    if unexpanded != from {
        return Err("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into());
    }
    let target = match from.parse::<i64>() {
        Ok(i) => match usize::try_from(i).ok().filter(|&i| i < df.stages.len()) {
            Some(i) => i,
            None => return Err(format!("invalid stage index {i}")),
        },
        Err(_) => match df.stage_by_name(from) {
            Some(s) => s.index,
            None => return Ok(StageRef::Image(from.to_string())),
        },
    };
    if target >= stage.index {
        let current = stage
            .name
            .clone()
            .unwrap_or_else(|| stage.index.to_string());
        return Err(format!(
            "cannot copy from stage {from:?}, it needs to be defined before current stage {current:?}"
        ));
    }
    Ok(StageRef::Stage(target))
}
