//! The `tracing` layer: turns each enabled event, plus the call context of its spans, into a
//! [`Record`] and hands the rendered lines to the sinks.
//!
//! Boundaries: levels come from [`LevelControl`], layouts from [`crate::format`], writing from
//! [`crate::sink`]; this module only collects fields. Spans are kept only when they declare
//! `authenticatedUser` or `correlationId`, the two values events inherit from them: other spans
//! add nothing to the layout, and keeping them would cost every instrumented library (h2, tonic)
//! an allocation per span. Spans are deliberately not level-filtered, so a `WARN` inside an
//! `info_span!("call", …)` still carries the caller even when the root level is `WARN`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use time::{OffsetDateTime, UtcOffset};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::format::{self, Record};
use crate::level::{Level, LevelControl};
use crate::sink::Sinks;

/// Field that carries the caller identity; it has its own top-level slot.
pub(crate) const AUTHENTICATED_USER: &str = "authenticatedUser";
/// Field that carries the correlation id; it has its own top-level slot.
pub(crate) const CORRELATION_ID: &str = "correlationId";
/// Field that names the event; it leads the message and the parameters.
pub(crate) const EVENT_ID: &str = "eventId";
/// The field `tracing` puts an event's formatted text in.
const MESSAGE: &str = "message";

/// Where timestamps come from: the system clock in a fixed offset, or a frozen instant (tests).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Clock {
    /// Now, shown in this offset (determined once, see [`crate::local_offset`]).
    System(UtcOffset),
    /// Always this instant, so layouts can be compared byte for byte.
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(OffsetDateTime),
}

impl Clock {
    fn now(self) -> OffsetDateTime {
        match self {
            Clock::System(offset) => {
                let now = OffsetDateTime::now_utc();
                // Only fails for dates near the ends of the representable range; UTC is better
                // than a panic there.
                now.checked_to_offset(offset).unwrap_or(now)
            }
            Clock::Fixed(instant) => instant,
        }
    }
}

/// State shared by the layer and the [`crate::LogGuard`].
#[derive(Debug)]
pub(crate) struct Output {
    /// The writers, one mutex each.
    pub(crate) sinks: Sinks,
    /// Lines that failed to write (disk full, closed stdout); logging never fails the caller.
    pub(crate) write_errors: AtomicU64,
}

/// The layer that writes the product's log layouts.
#[derive(Debug)]
pub(crate) struct LogLayer {
    /// Which events are wanted; replaceable while running (`logging.level.*` reloads).
    pub(crate) levels: LevelControl,
    /// The `application` field of every JSON line.
    pub(crate) application: String,
    /// Source of `@timestamp`.
    pub(crate) clock: Clock,
    /// The console line shows the process id, as Spring Boot's does.
    pub(crate) pid: u32,
    /// Where lines go.
    pub(crate) output: Arc<Output>,
}

/// The call context a span contributes to the events inside it.
#[derive(Clone, Debug, Default)]
struct CallContext {
    /// The verified caller, as its `Display` text.
    authenticated_user: Option<String>,
    /// The call's correlation id.
    correlation_id: Option<String>,
}

impl Visit for CallContext {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.store(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if is_call_context_field(field.name()) {
            self.store(field, format!("{value:?}"));
        }
    }
}

impl CallContext {
    fn store(&mut self, field: &Field, value: String) {
        match field.name() {
            AUTHENTICATED_USER => self.authenticated_user = Some(value),
            CORRELATION_ID => self.correlation_id = Some(value),
            _ => {}
        }
    }
}

fn is_call_context_field(name: &str) -> bool {
    name == AUTHENTICATED_USER || name == CORRELATION_ID
}

/// Whether a span callsite declares a field events inherit (recorded now or later).
fn carries_call_context(metadata: &Metadata<'_>) -> bool {
    metadata
        .fields()
        .iter()
        .any(|field| is_call_context_field(field.name()))
}

/// The fields of one event, sorted into the layout's slots.
#[derive(Debug, Default)]
struct EventFields {
    /// The formatted text, if any.
    text: Option<String>,
    /// `eventId`, if any.
    event_id: Option<String>,
    /// The event's own `authenticatedUser` (beats the spans').
    authenticated_user: Option<String>,
    /// The event's own `correlationId` (beats the spans').
    correlation_id: Option<String>,
    /// Every other field, in declaration order; a repeated name keeps its first position and
    /// its last value, so the JSON never has two keys with one name.
    params: Vec<(String, String)>,
}

impl EventFields {
    fn store(&mut self, field: &Field, value: String) {
        match field.name() {
            MESSAGE => self.text = Some(value).filter(|text| !text.is_empty()),
            EVENT_ID => self.event_id = Some(value),
            AUTHENTICATED_USER => self.authenticated_user = Some(value),
            CORRELATION_ID => self.correlation_id = Some(value),
            name => match self.params.iter_mut().find(|(known, _)| known == name) {
                Some((_, old)) => *old = value,
                None => self.params.push((name.to_owned(), value)),
            },
        }
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.store(field, value.to_owned());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.store(field, value.to_string());
    }

    /// `%value` arrives here as Display, `?value` as Debug and the message as `fmt::Arguments`;
    /// numbers and booleans too (their Debug equals their Display).
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.store(field, format!("{value:?}"));
    }
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if metadata.is_span() {
            if carries_call_context(metadata) {
                Interest::always()
            } else {
                Interest::never()
            }
        } else {
            // Decided per event in `enabled`: a cached `never` is shared by every subscriber
            // in the process, which tests that build several subscribers must not rely on.
            Interest::sometimes()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        // Without a hint, every `trace!` in h2, hyper and tonic reached `enabled` (a read lock
        // and a target match per event): several percent of a daemon's CPU under load.
        Some(self.levels.max_level_hint())
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        if metadata.is_span() {
            carries_call_context(metadata)
        } else {
            self.levels.allows(metadata.target(), metadata.level())
        }
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut context = CallContext::default();
        attrs.record(&mut context);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(context);
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<CallContext>() {
            Some(context) => values.record(context),
            None => {
                let mut context = CallContext::default();
                values.record(&mut context);
                extensions.insert(context);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut authenticated_user = fields.authenticated_user;
        let mut correlation_id = fields.correlation_id;
        if authenticated_user.is_none() || correlation_id.is_none() {
            // Innermost span first: the nearest call context wins, field by field.
            for span in ctx.event_scope(event).into_iter().flatten() {
                let extensions = span.extensions();
                if let Some(context) = extensions.get::<CallContext>() {
                    if authenticated_user.is_none() {
                        authenticated_user.clone_from(&context.authenticated_user);
                    }
                    if correlation_id.is_none() {
                        correlation_id.clone_from(&context.correlation_id);
                    }
                }
                if authenticated_user.is_some() && correlation_id.is_some() {
                    break;
                }
            }
        }
        let metadata = event.metadata();
        let record = Record {
            timestamp: self.clock.now(),
            target: metadata.target().to_owned(),
            thread: std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned(),
            level: Level::of_event(metadata.level()),
            text: fields.text,
            authenticated_user,
            correlation_id,
            event_id: fields.event_id,
            params: fields.params,
        };
        self.write(&record);
    }
}

impl LogLayer {
    /// Renders each layout that has a sink (outside any lock), then writes it to each sink.
    fn write(&self, record: &Record) {
        let output = &*self.output;
        if !output.sinks.json.is_empty() {
            let mut line = format::json_line(record, &self.application);
            line.push('\n');
            for sink in &output.sinks.json {
                sink.write_line(line.as_bytes(), &output.write_errors);
            }
        }
        if !output.sinks.plain.is_empty() {
            let mut line = format::plain_line(record, self.pid);
            line.push('\n');
            for sink in &output.sinks.plain {
                sink.write_line(line.as_bytes(), &output.write_errors);
            }
        }
    }
}
