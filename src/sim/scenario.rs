//! [`Scenario`]: everything a run depends on, as one serialisable value.
//! A run is a pure function of its scenario; the same scenario gives the
//! same trace digest.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fault::{FaultCount, ScheduledFault};
use crate::{
    points::Buggify,
    workload::{InvalidWorkload, WorkloadSpec, millis},
};

/// One simulation run, completely described.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Seeds turmoil (network latencies, host scheduling) and the workload.
    pub seed: u64,
    /// The system under test, as a [`crate::registry::Registry`] names it
    /// (`sync`, `semi-sync:2`, a user's own). Older files call it `protocol`.
    #[serde(alias = "protocol")]
    pub system: String,
    /// A deliberately planted bug of the system, by name (never part of
    /// `system`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bug: Option<String>,
    /// The system's own configuration, validated by the system (`null`:
    /// its defaults). Older files call it `engine`.
    #[serde(
        default,
        alias = "engine",
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub config: serde_json::Value,
    pub replicas: usize,
    pub clients: usize,
    #[serde(default)]
    pub network: NetworkSpec,
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// Faults, applied in order of their times.
    #[serde(default)]
    pub faults: Vec<ScheduledFault>,
    #[serde(default)]
    pub limits: PhaseLimits,
    /// Disk fault classes of turmoil's simulated filesystem.
    #[serde(default)]
    pub disk: DiskSpec,
    /// Whether and how `buggify!` points fire ([`crate::points`]); absent
    /// (as in every scenario saved before buggify existed), none fires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buggify: Option<Buggify>,
    /// The digest this scenario produced when it was saved (not an input:
    /// `replay` reports whether the run still matches it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_digest: Option<String>,
}

/// Disk fault classes, applied to every replica's simulated disk for the
/// whole run. Unsynced data is always lost on a crash (POSIX semantics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    /// Unsynced writes tear at 512-byte blocks on a crash.
    #[serde(default)]
    pub torn_writes: bool,
    /// Each read or write fails with EIO with this probability.
    #[serde(default)]
    pub io_error_probability: f64,
    /// Each read returns silently corrupted bytes with this probability.
    #[serde(default)]
    pub corruption_probability: f64,
}

impl DiskSpec {
    /// Applies the classes to turmoil's filesystem configuration: never an
    /// I/O latency or a page cache, which the harness's disks
    /// ([`crate::storage::SimDisk::without_latency`]) would not apply.
    pub(crate) fn configure(&self, fs: &mut turmoil::FsConfig) {
        if self.torn_writes {
            fs.block_size(512);
        }
        fs.io_error_probability(self.io_error_probability)
            .corruption_probability(self.corruption_probability);
    }

    /// The disk classes this run had, each counted as fired once and as
    /// effective when the storage recorded what it causes (torn writes:
    /// bytes cut off a torn tail on recovery; I/O errors: a failed I/O;
    /// corruption: a checksum that failed).
    pub(crate) fn fault_counts(
        &self,
        effects: &std::collections::BTreeMap<String, u64>,
    ) -> Vec<(String, FaultCount)> {
        let effect = |name: &str| effects.get(name).copied().unwrap_or(0) > 0;
        [
            (
                "torn-writes",
                self.torn_writes,
                effect("disk_bytes_dropped"),
            ),
            (
                "io-errors",
                self.io_error_probability > 0.0,
                effect("disk_io_errors"),
            ),
            (
                "corruption",
                self.corruption_probability > 0.0,
                effect("disk_damage_detected"),
            ),
        ]
        .into_iter()
        .filter(|(_, on, _)| *on)
        .map(|(kind, _, effective)| {
            let count = FaultCount {
                fired: 1,
                effective: u64::from(effective),
                ..FaultCount::default()
            };
            (kind.to_string(), count)
        })
        .collect()
    }

    fn validate(&self) -> Result<(), ScenarioError> {
        for (field, p) in [
            ("disk.io_error_probability", self.io_error_probability),
            ("disk.corruption_probability", self.corruption_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(ScenarioError::Invalid {
                    field: field.into(),
                    problem: format!("{p} is not a probability between 0 and 1"),
                });
            }
        }
        Ok(())
    }
}

/// Link latency and the simulation's tick. Every message takes a latency
/// drawn between `min_latency` and `max_latency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(with = "millis")]
    pub min_latency: Duration,
    #[serde(with = "millis")]
    pub max_latency: Duration,
    #[serde(with = "millis")]
    pub tick: Duration,
}

impl Default for NetworkSpec {
    fn default() -> Self {
        NetworkSpec {
            min_latency: Duration::from_millis(1),
            max_latency: Duration::from_millis(5),
            tick: Duration::from_millis(1),
        }
    }
}

/// How long each phase of a run may take, in simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseLimits {
    /// The workload phase ends when every client finished or after this
    /// long, or as soon as every replica is down with nothing to restart
    /// one before the end (no operation could succeed until the heal).
    #[serde(with = "millis")]
    pub workload: Duration,
    /// After the workload every fault is healed and the cluster gets this
    /// long to settle before the final reads.
    #[serde(with = "millis")]
    pub quiesce: Duration,
    /// The final reads must finish within this long.
    #[serde(with = "millis")]
    pub final_reads: Duration,
}

impl Default for PhaseLimits {
    fn default() -> Self {
        PhaseLimits {
            workload: Duration::from_secs(30),
            quiesce: Duration::from_millis(1000),
            final_reads: Duration::from_secs(10),
        }
    }
}

impl Scenario {
    /// A scenario of the system called `name`, with defaults for
    /// everything else: 3 replicas, 2 clients of the key-value workload,
    /// no faults.
    ///
    /// ```
    /// use replisim::sim::Scenario;
    /// let scenario = Scenario::new("my-store", 7);
    /// assert_eq!(scenario.system, "my-store");
    /// ```
    pub fn new(name: &str, seed: u64) -> Self {
        Scenario {
            seed,
            system: name.to_string(),
            bug: None,
            config: serde_json::Value::Null,
            replicas: 3,
            clients: 2,
            network: NetworkSpec::default(),
            workload: WorkloadSpec::default(),
            faults: Vec::new(),
            limits: PhaseLimits::default(),
            disk: DiskSpec::default(),
            buggify: None,
            recorded_digest: None,
        }
    }

    /// Reads a scenario from JSON, naming the field and the problem on error.
    ///
    /// ```
    /// use replisim::sim::Scenario;
    /// let error = Scenario::from_json(r#"{"seed": 1, "system": "sync", "replicas": "three"}"#)
    ///     .unwrap_err()
    ///     .to_string();
    /// assert!(error.contains("replicas: invalid type"), "{error}");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let scenario: Scenario =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                // The path is `?` when the JSON itself is broken.
                let field = match e.path().to_string() {
                    path if path == "?" => ".".to_string(),
                    path => path,
                };
                ScenarioError::Parse {
                    field,
                    problem: e.inner().to_string(),
                }
            })?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Pretty JSON, as saved in fixtures and accepted by `replisim replay`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a scenario always serialises")
    }

    /// Checks the values that JSON types cannot (the system checks its own
    /// configuration, workload and roles when the scenario runs).
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field: &str, problem: String| {
            Err(ScenarioError::Invalid {
                field: field.to_string(),
                problem,
            })
        };
        if self.replicas == 0 || self.replicas > 64 {
            return bad(
                "replicas",
                format!("{} is not between 1 and 64", self.replicas),
            );
        }
        if self.clients == 0 || self.clients > 64 {
            return bad(
                "clients",
                format!("{} is not between 1 and 64", self.clients),
            );
        }
        if self.network.tick.is_zero() {
            return bad("network.tick", "must be at least 1 ms".into());
        }
        if self.network.min_latency > self.network.max_latency {
            return bad(
                "network.min_latency",
                "is greater than network.max_latency".into(),
            );
        }
        self.disk.validate()?;
        if let Some(field) = self.buggify.as_ref().and_then(Buggify::invalid_field) {
            return bad(
                &format!("buggify.{field}"),
                "is not a probability between 0 and 1".into(),
            );
        }
        for (i, fault) in self.faults.iter().enumerate() {
            fault
                .fault
                .validate(self.replicas)
                .map_err(|problem| ScenarioError::Invalid {
                    field: format!("faults[{i}]"),
                    problem,
                })?;
            if let Some(trigger) = &fault.trigger {
                trigger
                    .validate(self.replicas)
                    .map_err(|problem| ScenarioError::Invalid {
                        field: format!("faults[{i}].trigger"),
                        problem,
                    })?;
            }
        }
        Ok(())
    }
}

/// A scenario that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Not valid JSON for a scenario; `field` is the path to the offending
    /// value (`.` for the document itself).
    #[error("malformed scenario: {field}: {problem}")]
    Parse { field: String, problem: String },
    #[error("invalid scenario: {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("{0}")]
    UnknownSystem(String),
}

impl From<InvalidWorkload> for ScenarioError {
    fn from(error: InvalidWorkload) -> Self {
        ScenarioError::Invalid {
            field: error.field,
            problem: error.problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Fault, Target, Trigger};

    /// The error `from_json` gives for `text`, as the user sees it.
    fn error(text: &str) -> String {
        Scenario::from_json(text).unwrap_err().to_string()
    }

    const HEAD: &str = r#""seed": 1, "system": "sync", "replicas": 3, "clients": 2"#;

    #[test]
    fn malformed_files_name_the_field_and_the_problem() {
        let cases = [
            // (document, the field named, words of the problem)
            (
                format!("{{{HEAD}, \"replica\": 3}}"),
                "replica",
                "unknown field",
            ),
            (
                r#"{"seed": 1, "system": "sync", "replicas": "3", "clients": 2}"#.to_string(),
                "replicas",
                "invalid type: string",
            ),
            (
                format!("{{{HEAD}, \"network\": {{\"tick\": -1}}}}"),
                "network.tick",
                "invalid value",
            ),
            (
                format!(
                    "{{{HEAD}, \"workload\": {{\"ops_per_client\": 3, \"keys\": 1, \"mix\": {{\"read\": \"1\"}}, \"think_time\": 1}}}}"
                ),
                "workload.mix.read",
                "invalid type: string",
            ),
            (
                format!(
                    "{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"crash\", \"nod\": 1}}]}}"
                ),
                "faults[0]",
                "unknown field `nod`",
            ),
            (
                format!("{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"explode\"}}]}}"),
                "faults[0]",
                "unknown variant `explode`",
            ),
            (
                r#"{"seed": 1, "system": "sync", "replicas": 3}"#.to_string(),
                ".",
                "missing field `clients`",
            ),
            (format!("{{{HEAD}"), ".", "EOF"),
            (
                r#"{"seed": 1, "protocol": "sync", "replicas": 0, "clients": 2}"#.to_string(),
                "replicas",
                "not between 1 and 64",
            ),
            (
                format!("{{{HEAD}, \"disk\": {{\"io_error_probability\": 2.0}}}}"),
                "disk.io_error_probability",
                "not a probability",
            ),
            (
                format!(
                    "{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"crash\", \"node\": 7}}]}}"
                ),
                "faults[0]",
                "replica 7 does not exist",
            ),
            (
                format!(
                    "{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"heal\", \"trigger\": {{\"host\": 1}}}}]}}"
                ),
                "faults[0].trigger",
                "names none of target, message and fields",
            ),
            (
                format!(
                    "{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"heal\", \"trigger\": {{\"host\": 3, \"message\": \"m\"}}}}]}}"
                ),
                "faults[0].trigger",
                "host: replica 3 does not exist",
            ),
            (
                format!(
                    "{{{HEAD}, \"faults\": [{{\"at_ms\": 5, \"kind\": \"heal\", \"trigger\": {{\"event\": \"m\"}}}}]}}"
                ),
                "faults[0].trigger.event",
                "unknown field `event`, expected one of `host`, `target`, `message`, `fields`",
            ),
        ];
        for (text, field, problem) in cases {
            let error = error(&text);
            assert!(
                error.contains(&format!("{field}: ")) && error.contains(problem),
                "{text}\ngave: {error}"
            );
        }
    }

    #[test]
    fn a_saved_scenario_reads_back_equal() {
        let mut scenario = Scenario::new("sync", 9);
        scenario.bug = Some("ack-before-persist".into());
        scenario.config = serde_json::json!({"batch": 8});
        scenario.recorded_digest = Some("00000000000000ff".into());
        let applied = Trigger::message("applied replicated entries")
            .on(Target::Replica(1))
            .with_target("replisim::engine")
            .with_field("count", 1);
        scenario.faults = vec![ScheduledFault::at(5, Fault::Heal).when(applied.clone())];
        assert_eq!(Scenario::from_json(&scenario.to_json()).unwrap(), scenario);
        // Field values may be JSON numbers or booleans, read as their text.
        let text = format!(
            r#"{{{HEAD}, "faults": [{{"at_ms": 5, "kind": "heal", "trigger": {{"host": 1, "target": "replisim::engine", "message": "applied replicated entries", "fields": {{"count": 1}}}}}}]}}"#
        );
        let read = Scenario::from_json(&text).unwrap();
        assert_eq!(read.faults[0].trigger, Some(applied));
        assert_eq!(
            read.faults[0].to_string(),
            r#"heal partitions when replica-1 logs a replisim::engine event "applied replicated entries" with count=1 after 5 ms"#
        );
    }

    #[test]
    fn buggify_is_off_unless_a_scenario_says_how() {
        let old = Scenario::from_json(&format!("{{{HEAD}}}")).unwrap();
        assert_eq!(old.buggify, None);
        assert!(!old.to_json().contains("buggify"), "{}", old.to_json());
        let on =
            Scenario::from_json(&format!(r#"{{{HEAD}, "buggify": {{"fires": 0.5}}}}"#)).unwrap();
        let rates = Buggify {
            enabled: 0.25,
            fires: 0.5,
        };
        assert_eq!(on.buggify, Some(rates));
        assert_eq!(Scenario::from_json(&on.to_json()).unwrap(), on);
        let mut wrong = on;
        wrong.buggify = Some(Buggify {
            enabled: 1.5,
            ..rates
        });
        let error = wrong.validate().unwrap_err().to_string();
        assert_eq!(
            error,
            "invalid scenario: buggify.enabled: is not a probability between 0 and 1"
        );
    }
}
