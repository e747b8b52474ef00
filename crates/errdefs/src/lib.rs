//! Error categories for berth, as Docker's `errdefs` has them.
//!
//! Every library error type in berth implements [`HasCategory`], so that an error carries its
//! *kind* (not found, invalid parameter, conflict, …) up to the edge that has to act on it. The
//! API server turns a category into an HTTP status with [`Category::http_status`], the single
//! table for that mapping; nothing else in berth decides status codes.
//!
//! This crate is layer 0: it imports nothing from berth and depends only on `thiserror`.
//! [`CategorizedError`] is a plain category-plus-message error for edges that must build one
//! themselves (for example when a message has to keep Docker's exact wording).

use std::fmt;

/// The kind of an error, independent of where it came from.
///
/// The set is Docker's (`github.com/docker/docker/errdefs`); the HTTP mapping is moby's
/// `httpstatus` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// The object named by the request does not exist (`No such container: x`).
    NotFound,
    /// The request itself is malformed or asks for something impossible.
    InvalidParameter,
    /// The request clashes with the current state (name in use, container running).
    Conflict,
    /// The caller is not authenticated (registry credentials missing or wrong).
    Unauthorized,
    /// A needed service or resource is temporarily unavailable.
    Unavailable,
    /// The caller is authenticated but not allowed to do this.
    Forbidden,
    /// Something failed inside berth or the host (I/O error, broken invariant).
    System,
    /// The request was a no-op: the object is already in the asked-for state.
    NotModified,
    /// The operation is known but not implemented (by berth, a driver or this platform).
    NotImplemented,
    /// The cause could not be classified.
    Unknown,
    /// The operation was cancelled (client went away, context cancelled).
    Cancelled,
    /// The operation ran out of time.
    Deadline,
    /// Stored data was found lost or corrupted.
    DataLoss,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 13] = [
        Category::NotFound,
        Category::InvalidParameter,
        Category::Conflict,
        Category::Unauthorized,
        Category::Unavailable,
        Category::Forbidden,
        Category::System,
        Category::NotModified,
        Category::NotImplemented,
        Category::Unknown,
        Category::Cancelled,
        Category::Deadline,
        Category::DataLoss,
    ];

    /// The HTTP status code the Docker Engine API answers with for this category.
    ///
    /// This is the one table berth uses; it follows moby's `httpstatus.FromError`. Cancelled,
    /// deadline and data-loss errors are 500 there too: a client that gave up never reads the
    /// status, and the others are server-side failures.
    pub const fn http_status(self) -> u16 {
        match self {
            Category::NotFound => 404,
            Category::InvalidParameter => 400,
            Category::Conflict => 409,
            Category::Unauthorized => 401,
            Category::Unavailable => 503,
            Category::Forbidden => 403,
            Category::NotModified => 304,
            Category::NotImplemented => 501,
            Category::System
            | Category::Unknown
            | Category::Cancelled
            | Category::Deadline
            | Category::DataLoss => 500,
        }
    }

    /// A short lowercase name for logs (`"not found"`, `"invalid parameter"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::NotFound => "not found",
            Category::InvalidParameter => "invalid parameter",
            Category::Conflict => "conflict",
            Category::Unauthorized => "unauthorized",
            Category::Unavailable => "unavailable",
            Category::Forbidden => "forbidden",
            Category::System => "system",
            Category::NotModified => "not modified",
            Category::NotImplemented => "not implemented",
            Category::Unknown => "unknown",
            Category::Cancelled => "cancelled",
            Category::Deadline => "deadline exceeded",
            Category::DataLoss => "data loss",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by every berth error type: tells which [`Category`] an error value belongs to.
///
/// A wrapping error should forward the category of the error it wraps rather than pick its
/// own, so that the kind survives being passed up through the layers.
pub trait HasCategory {
    /// The category of this error value.
    fn category(&self) -> Category;
}

impl<T: HasCategory + ?Sized> HasCategory for &T {
    fn category(&self) -> Category {
        (**self).category()
    }
}

impl<T: HasCategory + ?Sized> HasCategory for Box<T> {
    fn category(&self) -> Category {
        (**self).category()
    }
}

impl HasCategory for Category {
    fn category(&self) -> Category {
        *self
    }
}

/// A generic error: a category and the message a client sees.
///
/// For edges that need to build an error on the spot; libraries should prefer their own
/// `thiserror` enums that name the object involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CategorizedError {
    /// The kind of error.
    pub category: Category,
    /// The message, shown to clients as-is (`{"message": "..."}`).
    pub message: String,
}

impl CategorizedError {
    /// An error of `category` with `message`.
    pub fn new(category: Category, message: impl Into<String>) -> Self {
        Self {
            category,
            message: message.into(),
        }
    }

    /// Captures any categorised error's category and display text.
    pub fn from_error<E: HasCategory + fmt::Display + ?Sized>(err: &E) -> Self {
        Self::new(err.category(), err.to_string())
    }

    /// A [`Category::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Category::NotFound, message)
    }

    /// A [`Category::InvalidParameter`] error.
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(Category::InvalidParameter, message)
    }

    /// A [`Category::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Category::Conflict, message)
    }

    /// A [`Category::System`] error.
    pub fn system(message: impl Into<String>) -> Self {
        Self::new(Category::System, message)
    }

    /// The HTTP status for this error ([`Category::http_status`] of its category).
    pub fn http_status(&self) -> u16 {
        self.category.http_status()
    }
}

impl HasCategory for CategorizedError {
    fn category(&self) -> Category {
        self.category
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_matches_moby_table() {
        let expected = [
            (Category::NotFound, 404),
            (Category::InvalidParameter, 400),
            (Category::Conflict, 409),
            (Category::Unauthorized, 401),
            (Category::Unavailable, 503),
            (Category::Forbidden, 403),
            (Category::System, 500),
            (Category::NotModified, 304),
            (Category::NotImplemented, 501),
            (Category::Unknown, 500),
            (Category::Cancelled, 500),
            (Category::Deadline, 500),
            (Category::DataLoss, 500),
        ];
        assert_eq!(expected.len(), Category::ALL.len());
        for (category, status) in expected {
            assert_eq!(category.http_status(), status, "{category:?}");
        }
    }

    #[test]
    fn all_lists_each_category_once() {
        let mut seen = std::collections::HashSet::new();
        for c in Category::ALL {
            assert!(seen.insert(c), "{c:?} twice");
            assert!(!c.as_str().is_empty());
        }
    }

    #[test]
    fn categorized_error_displays_message_only() {
        let e = CategorizedError::not_found("No such container: x");
        assert_eq!(e.to_string(), "No such container: x");
        assert_eq!(e.category(), Category::NotFound);
        assert_eq!(e.http_status(), 404);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("name {0} in use")]
    struct InUse(String);

    impl HasCategory for InUse {
        fn category(&self) -> Category {
            Category::Conflict
        }
    }

    #[test]
    fn category_travels_through_references_and_boxes() {
        let e = InUse("/x".into());
        let by_ref: &dyn HasCategory = &&e;
        assert_eq!(by_ref.category(), Category::Conflict);
        let boxed: Box<dyn HasCategory> = Box::new(InUse("/y".into()));
        assert_eq!(boxed.category(), Category::Conflict);
        let captured = CategorizedError::from_error(&e);
        assert_eq!(captured, CategorizedError::conflict("name /x in use"));
    }
}
