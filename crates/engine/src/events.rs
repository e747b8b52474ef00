//! The `Events` service: a broadcast bus for object events (container create, volume mount,
//! …) with a bounded history so `docker events --since … --until …` can replay the past.
//!
//! Publishing and subscribing take the same lock, so a subscriber sees every event exactly
//! once: each one is either in the replayed history or arrives live, never both or neither.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use berth_errdefs::{Category, HasCategory};
use berth_reference::{FilterError, Filters};
use tokio::sync::broadcast;

use crate::system::now_nanos;

/// How many past events are kept for replay; Docker keeps 256.
pub const DEFAULT_HISTORY: usize = 256;

/// The kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A container.
    Container,
    /// An image.
    Image,
    /// A volume.
    Volume,
    /// A network.
    Network,
    /// The daemon itself.
    Daemon,
    /// A plugin.
    Plugin,
}

impl EventType {
    /// Docker's name for it (`container`, `image`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Container => "container",
            EventType::Image => "image",
            EventType::Volume => "volume",
            EventType::Network => "network",
            EventType::Daemon => "daemon",
            EventType::Plugin => "plugin",
        }
    }
}

/// One thing that happened to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The object's kind.
    pub kind: EventType,
    /// What happened (`create`, `start`, `die`, `health_status: healthy`, …).
    pub action: String,
    /// The object's id (a volume's name).
    pub actor_id: String,
    /// Extra facts (`name`, `image`, `exitCode`, the object's labels).
    pub attributes: BTreeMap<String, String>,
    /// `local`.
    pub scope: &'static str,
    /// When, in nanoseconds since the epoch.
    pub time_nano: i64,
}

impl Event {
    /// An event stamped with the current time.
    pub fn now(
        kind: EventType,
        action: impl Into<String>,
        actor_id: impl Into<String>,
        attributes: BTreeMap<String, String>,
    ) -> Event {
        Event {
            kind,
            action: action.into(),
            actor_id: actor_id.into(),
            attributes,
            scope: "local",
            time_nano: now_nanos(),
        }
    }
}

/// A subscription request: a time window and filters, as `GET /events` takes them.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Replay stored events from this time on (nanoseconds since the epoch).
    pub since: Option<i64>,
    /// Stop once this time is reached (nanoseconds since the epoch).
    pub until: Option<i64>,
    /// `type`, `event`, `container`, `image`, `label`, … as Docker has them.
    pub filters: Filters,
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// A filter key `/events` does not know.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// `until` lies before `since`.
    #[error("`since` time ({since}) cannot be after `until` time ({until})")]
    SinceAfterUntil {
        /// The asked start, Unix nanoseconds.
        since: i64,
        /// The asked end, Unix nanoseconds.
        until: i64,
    },
}

impl HasCategory for EventsError {
    fn category(&self) -> Category {
        Category::InvalidParameter
    }
}

/// The filter keys `/events` accepts (moby's list).
const FILTER_KEYS: &[&str] = &[
    "config",
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "node",
    "plugin",
    "scope",
    "secret",
    "service",
    "type",
    "volume",
];

/// The event bus.
#[derive(Debug)]
pub struct Events {
    history: Mutex<VecDeque<Event>>,
    capacity: usize,
    live: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        Events::new(DEFAULT_HISTORY)
    }
}

impl Events {
    /// A bus that keeps the last `capacity` events for replay.
    pub fn new(capacity: usize) -> Events {
        let (live, _) = broadcast::channel(capacity.max(16));
        Events {
            history: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
            live,
        }
    }

    /// Records `event` and hands it to every live subscriber.
    pub fn publish(&self, event: Event) {
        let mut history = self.lock();
        if history.len() == self.capacity {
            history.pop_front();
        }
        history.push_back(event.clone());
        // No subscribers is not an error.
        let _ = self.live.send(event);
    }

    /// Starts a subscription: stored events inside the window first (only when `since` or
    /// `until` is given, as in Docker), then live events unless `until` has passed.
    pub fn subscribe(&self, query: EventQuery) -> Result<Subscription, EventsError> {
        query.filters.validate(FILTER_KEYS)?;
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since > until
        {
            return Err(EventsError::SinceAfterUntil { since, until });
        }
        let history = self.lock();
        let replay = if query.since.is_some() || query.until.is_some() {
            history
                .iter()
                .filter(|e| query.since.is_none_or(|s| e.time_nano >= s))
                .filter(|e| query.until.is_none_or(|u| e.time_nano <= u))
                .cloned()
                .collect()
        } else {
            VecDeque::new()
        };
        let ended = query.until.is_some_and(|u| u <= now_nanos());
        let live = (!ended).then(|| self.live.subscribe());
        drop(history);
        Ok(Subscription {
            replay,
            live,
            until: query.until,
            filters: query.filters,
        })
    }

    /// Number of live subscribers (`NEventsListener`).
    pub fn listeners(&self) -> usize {
        self.live.receiver_count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Event>> {
        // A panic while holding the lock cannot leave the deque inconsistent.
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An open subscription; [`Subscription::next`] yields matching events in order.
#[derive(Debug)]
pub struct Subscription {
    replay: VecDeque<Event>,
    live: Option<broadcast::Receiver<Event>>,
    until: Option<i64>,
    filters: Filters,
}

impl Subscription {
    /// The next matching event, or `None` once `until` is reached (never, without `until`).
    pub async fn next(&mut self) -> Option<Event> {
        while let Some(event) = self.replay.pop_front() {
            if matches(&self.filters, &event) {
                return Some(event);
            }
        }
        loop {
            let live = self.live.as_mut()?;
            let received = match self.until {
                Some(until) => {
                    let left = u64::try_from(until - now_nanos()).unwrap_or(0);
                    match tokio::time::timeout(Duration::from_nanos(left), live.recv()).await {
                        Ok(received) => received,
                        Err(_) => {
                            self.live = None;
                            return None;
                        }
                    }
                }
                None => live.recv().await,
            };
            match received {
                Ok(event) if self.until.is_some_and(|u| event.time_nano > u) => {
                    self.live = None;
                    return None;
                }
                Ok(event) if matches(&self.filters, &event) => return Some(event),
                Ok(_) => {}
                // A slow reader misses events rather than stalling publishers, as in Docker.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    self.live = None;
                    return None;
                }
            }
        }
    }
}

/// Docker's event filter: every given key must match (moby `daemon/events/filter.go`).
fn matches(filters: &Filters, event: &Event) -> bool {
    let attr = |k: &str| event.attributes.get(k).map_or("", String::as_str);
    // A key for one object type (`container=web`) also drops events of other types whose
    // actor differs, as in Docker.
    let by_name = |key: &str| {
        filters.fuzzy_match(key, &event.actor_id) || filters.fuzzy_match(key, attr("name"))
    };
    let image_name = if event.kind == EventType::Image {
        attr("name")
    } else {
        attr("image")
    };
    let action_matches = filters.exact_match("event", &event.action)
        || event
            .action
            .split_once(':')
            .is_some_and(|(head, _)| filters.exact_match("event", head));
    action_matches
        && filters.exact_match("type", event.kind.as_str())
        && filters.exact_match("scope", event.scope)
        && by_name("daemon")
        && by_name("container")
        && by_name("plugin")
        && filters.exact_match("volume", &event.actor_id)
        && by_name("network")
        && (filters.exact_match("image", &event.actor_id)
            || filters.exact_match("image", image_name)
            || filters.exact_match("image", strip_tag(image_name)))
        && filters.match_kv_list("label", &event.attributes)
}

fn strip_tag(image: &str) -> &str {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, action: &str, id: &str, name: &str, at: i64) -> Event {
        Event {
            kind,
            action: action.into(),
            actor_id: id.into(),
            attributes: BTreeMap::from([("name".into(), name.into())]),
            scope: "local",
            time_nano: at,
        }
    }

    async fn drain(mut sub: Subscription) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(e) = sub.next().await {
            seen.push(format!("{}:{}", e.actor_id, e.action));
        }
        seen
    }

    #[tokio::test]
    async fn replays_only_the_window_and_then_ends() {
        let bus = Events::new(8);
        for (i, at) in [100, 200, 300, 400].into_iter().enumerate() {
            bus.publish(event(
                EventType::Container,
                "start",
                &format!("c{i}"),
                "x",
                at,
            ));
        }
        let sub = bus
            .subscribe(EventQuery {
                since: Some(200),
                until: Some(300),
                ..EventQuery::default()
            })
            .expect("subscribe");
        assert_eq!(drain(sub).await, ["c1:start", "c2:start"]);
        assert_eq!(
            bus.listeners(),
            0,
            "a past window needs no live subscription"
        );
    }

    #[tokio::test]
    async fn history_is_bounded() {
        let bus = Events::new(2);
        for at in 1..=5 {
            bus.publish(event(
                EventType::Volume,
                "create",
                &format!("v{at}"),
                "",
                at,
            ));
        }
        let sub = bus
            .subscribe(EventQuery {
                since: Some(0),
                until: Some(10),
                ..EventQuery::default()
            })
            .expect("subscribe");
        assert_eq!(drain(sub).await, ["v4:create", "v5:create"]);
    }

    #[tokio::test]
    async fn live_events_follow_the_replay_and_until_ends_the_stream() {
        let bus = Events::new(8);
        bus.publish(Event::now(
            EventType::Network,
            "create",
            "n0",
            BTreeMap::new(),
        ));
        let start = now_nanos() - 1_000_000_000;
        let mut sub = bus
            .subscribe(EventQuery {
                since: Some(start),
                until: Some(now_nanos() + 300_000_000),
                ..EventQuery::default()
            })
            .expect("subscribe");
        assert_eq!(bus.listeners(), 1);
        bus.publish(Event::now(
            EventType::Network,
            "destroy",
            "n0",
            BTreeMap::new(),
        ));
        let first = sub.next().await.expect("replayed");
        let second = sub.next().await.expect("live");
        assert_eq!(
            (first.action.as_str(), second.action.as_str()),
            ("create", "destroy")
        );
        let ended = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
        assert_eq!(ended.expect("until ends the subscription"), None);
    }

    #[tokio::test]
    async fn filters_follow_docker() {
        let bus = Events::new(16);
        bus.publish(event(EventType::Container, "create", "abc123", "web", 1));
        bus.publish(event(
            EventType::Container,
            "health_status: healthy",
            "abc123",
            "web",
            2,
        ));
        bus.publish(event(EventType::Container, "create", "def456", "db", 3));
        bus.publish(event(EventType::Volume, "create", "vol", "", 4));
        let window = |filters: &str| EventQuery {
            since: Some(0),
            until: Some(10),
            filters: Filters::parse(filters).expect("filters"),
        };
        let got = |q| drain(bus.subscribe(q).expect("subscribe"));
        assert_eq!(
            got(window(r#"{"container":{"web":true}}"#)).await,
            ["abc123:create", "abc123:health_status: healthy"]
        );
        assert_eq!(
            got(window(r#"{"container":{"def":true}}"#)).await,
            ["def456:create"]
        );
        assert_eq!(
            got(window(r#"{"type":{"volume":true}}"#)).await,
            ["vol:create"]
        );
        assert_eq!(
            got(window(r#"{"event":{"health_status":true}}"#)).await,
            ["abc123:health_status: healthy"]
        );
    }

    #[test]
    fn unknown_filters_and_reversed_windows_are_invalid_parameters() {
        let bus = Events::default();
        let err = bus
            .subscribe(EventQuery {
                filters: Filters::parse(r#"{"colour":{"red":true}}"#).expect("filters"),
                ..EventQuery::default()
            })
            .expect_err("unknown key");
        assert_eq!(err.to_string(), "invalid filter 'colour'");
        assert_eq!(err.category(), Category::InvalidParameter);
        let err = bus
            .subscribe(EventQuery {
                since: Some(5),
                until: Some(4),
                ..EventQuery::default()
            })
            .expect_err("reversed");
        assert_eq!(err.category(), Category::InvalidParameter);
    }
}
