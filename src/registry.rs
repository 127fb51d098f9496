//! The registry of systems: names with parameters (`sync`, `semi-sync:2`,
//! `dynamo:3/2/2`) mapped to factories that build a [`System`] from a
//! scenario's configuration.
//!
//! A name is a family, optionally followed by `:` and parameters, which
//! never contain commas (so comma-separated lists of names stay
//! unambiguous). Each factory reads its parameters, its own configuration
//! (the scenario's `config`, validated with errors naming the field) and
//! an optional planted bug (the scenario's `bug`). The built-in protocols
//! register through exactly this API, and a user's crate builds its own
//! registry, and its own command-line tool over it, the same way:
//!
//! ```
//! use std::rc::Rc;
//! use futures_util::future::LocalBoxFuture;
//! use replisim::history::{Completion, Op};
//! use replisim::node::{ClientContext, Declaration, KvClient, NodeContext, NodeResult, System};
//! use replisim::registry::{Registry, SystemError};
//!
//! struct Idle { replicas: usize }
//! struct Refuse;
//!
//! #[async_trait::async_trait(?Send)]
//! impl KvClient for Refuse {
//!     async fn call(&mut self, _op: &Op) -> Completion { Completion::Fail("idle".into()) }
//! }
//!
//! impl System for Idle {
//!     fn declaration(&self) -> Declaration {
//!         Declaration { replicas: self.replicas..=self.replicas, ..Declaration::default() }
//!     }
//!     fn replica(&self, _node: NodeContext) -> LocalBoxFuture<'static, NodeResult> {
//!         Box::pin(std::future::pending())
//!     }
//!     fn client(&self, _ctx: ClientContext) -> Box<dyn KvClient> { Box::new(Refuse) }
//! }
//!
//! let mut registry = Registry::new();
//! registry.register("idle", "idle:N, a system that does nothing", |spec| {
//!     let replicas = spec.number_param(1)?;
//!     Ok(Rc::new(Idle { replicas }) as Rc<dyn System>)
//! });
//! assert!(registry.build("idle:3", &serde_json::Value::Null, None).is_ok());
//! let error = registry.build("paxos", &serde_json::Value::Null, None).err().unwrap();
//! assert!(error.to_string().contains("unknown system \"paxos\""), "{error}");
//! ```

use std::{cell::RefCell, collections::BTreeMap, fmt, rc::Rc, sync::Arc};

use serde::de::DeserializeOwned;

use crate::{
    node::System,
    sim::{Outcome, RunError, RunOptions, Scenario, ScenarioError, run_system, run_with},
};

/// Why a system could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    #[error("unknown system {name:?}: expected {known}")]
    Unknown { name: String, known: String },
    /// A parameter, the configuration or the bug is wrong; `field` names
    /// it (`system`, `config.heartbeat`, `bug`).
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
}

/// What a factory is asked to build.
#[derive(Debug, Clone, Copy)]
pub struct SystemSpec<'a> {
    /// The whole name, as given (`semi-sync:2`).
    pub name: &'a str,
    /// The part after the first `:`, if any (`2`).
    pub params: Option<&'a str>,
    /// The scenario's `config` (`null` when it has none).
    pub config: &'a serde_json::Value,
    /// The planted bug to build in, if any.
    pub bug: Option<&'a str>,
    /// Set when [`Registry::planted_bugs`] asks which bugs the factory
    /// knows: [`SystemSpec::bug`] writes its enum's names here.
    probe: Option<&'a RefCell<Option<PlantedBugs>>>,
}

/// The planted bugs a system can be built with: the names of the bug enum
/// its factory reads with [`SystemSpec::bug`], and that enum's type (two
/// systems built on one engine share its bugs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlantedBugs {
    pub kind: &'static str,
    pub names: &'static [&'static str],
}

impl SystemSpec<'_> {
    /// An error about the parameters.
    pub fn bad_params(&self, problem: impl fmt::Display) -> SystemError {
        SystemError::Invalid {
            field: "system".into(),
            problem: format!("{:?}: {problem}", self.name),
        }
    }

    /// The parameters as one number, or `default` without any.
    pub fn number_param(&self, default: usize) -> Result<usize, SystemError> {
        match self.params {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| self.bad_params(format!("{text:?} is not a number"))),
        }
    }

    /// The configuration as `T`; `null` gives `T::default()`. Errors name
    /// the field (`config.client_timeout`).
    pub fn config<T: DeserializeOwned + Default>(&self) -> Result<T, SystemError> {
        if self.config.is_null() {
            return Ok(T::default());
        }
        serde_path_to_error::deserialize(self.config).map_err(|e| {
            let path = e.path().to_string();
            SystemError::Invalid {
                field: if path == "." {
                    "config".into()
                } else {
                    format!("config.{path}")
                },
                problem: e.inner().to_string(),
            }
        })
    }

    /// The planted bug as `B` (a serde enum named in kebab-case), if any.
    pub fn bug<B: DeserializeOwned>(&self) -> Result<Option<B>, SystemError> {
        if let Some(probe) = self.probe {
            *probe.borrow_mut() = Some(PlantedBugs {
                kind: std::any::type_name::<B>(),
                names: variant_names::<B>(),
            });
            return Ok(None);
        }
        self.bug
            .map(|name| {
                serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|e| {
                    SystemError::Invalid {
                        field: "bug".into(),
                        problem: format!("{name:?} is not a planted bug of {}: {e}", self.name),
                    }
                })
            })
            .transpose()
    }

    /// Refuses any planted bug (for systems that have none).
    pub fn no_bug(&self) -> Result<(), SystemError> {
        match self.bug {
            None => Ok(()),
            Some(bug) => Err(SystemError::Invalid {
                field: "bug".into(),
                problem: format!("{} has no planted bug {bug:?}", self.name),
            }),
        }
    }
}

/// The names a serde enum deserialises from (its variants, renamed as
/// its attributes say): what its derived `Deserialize` hands to
/// `deserialize_enum`, caught by a deserializer that reads nothing.
fn variant_names<B: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error as _, Visitor, value::Error};

    struct Names(&'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for &mut Names {
        type Error = Error;

        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
            Err(Error::custom("not an enum"))
        }

        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            self.0 = variants;
            Err(Error::custom("names read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
            struct identifier ignored_any
        }
    }

    let mut names = Names(&[]);
    let _ = B::deserialize(&mut names);
    names.0
}

impl From<SystemError> for ScenarioError {
    fn from(error: SystemError) -> Self {
        match error {
            SystemError::Invalid { field, problem } => ScenarioError::Invalid { field, problem },
            unknown @ SystemError::Unknown { .. } => {
                ScenarioError::UnknownSystem(unknown.to_string())
            }
        }
    }
}

impl From<SystemError> for RunError {
    fn from(error: SystemError) -> Self {
        RunError::Scenario(error.into())
    }
}

type Factory = Arc<dyn Fn(&SystemSpec) -> Result<Rc<dyn System>, SystemError> + Send + Sync>;

/// Families of systems by name. Cheap to clone and shareable between
/// threads (each thread builds its own systems).
#[derive(Clone, Default)]
pub struct Registry {
    families: BTreeMap<String, (String, Factory)>,
    /// What a sweep covers when it names no system (see [`Registry::sweeps`]).
    sweeps: Vec<String>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.families.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `family` (the part of a name before `:`); `usage` shows
    /// how to name it (`semi-sync:K`) and what it is, for help and errors.
    pub fn register(
        &mut self,
        family: &str,
        usage: &str,
        factory: impl Fn(&SystemSpec) -> Result<Rc<dyn System>, SystemError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.families
            .insert(family.to_string(), (usage.to_string(), Arc::new(factory)));
        self
    }

    /// Names the systems a sweep covers when it is given none
    /// (`replisim explore` without `--protocols`), in table order.
    pub fn sweep_by_default<S: Into<String>>(
        &mut self,
        names: impl IntoIterator<Item = S>,
    ) -> &mut Self {
        self.sweeps = names.into_iter().map(Into::into).collect();
        self
    }

    /// The systems a sweep covers when it names none: those set with
    /// [`Registry::sweep_by_default`], or else every family by its bare name.
    ///
    /// ```
    /// use replisim::registry::Registry;
    ///
    /// let mut registry = replisim::replication::registry();
    /// assert!(registry.sweeps().contains(&"semi-sync:1".to_string()));
    /// registry.sweep_by_default(["sync", "raft"]);
    /// assert_eq!(registry.sweeps(), ["sync", "raft"]);
    /// assert!(Registry::new().sweeps().is_empty());
    /// ```
    pub fn sweeps(&self) -> Vec<String> {
        match self.sweeps.is_empty() {
            true => self.families.keys().cloned().collect(),
            false => self.sweeps.clone(),
        }
    }

    /// Every family's usage line.
    pub fn usage(&self) -> Vec<&str> {
        self.families
            .values()
            .map(|(usage, _)| usage.as_str())
            .collect()
    }

    /// Builds the system called `name` with `config` and `bug`.
    pub fn build(
        &self,
        name: &str,
        config: &serde_json::Value,
        bug: Option<&str>,
    ) -> Result<Rc<dyn System>, SystemError> {
        self.build_with(name, config, bug, None)
    }

    fn build_with(
        &self,
        name: &str,
        config: &serde_json::Value,
        bug: Option<&str>,
        probe: Option<&RefCell<Option<PlantedBugs>>>,
    ) -> Result<Rc<dyn System>, SystemError> {
        let (family, params) = match name.split_once(':') {
            Some((family, params)) => (family, Some(params)),
            None => (name, None),
        };
        let Some((_, factory)) = self.families.get(family) else {
            return Err(SystemError::Unknown {
                name: name.to_string(),
                known: self.known(),
            });
        };
        factory(&SystemSpec {
            name,
            params,
            config,
            bug,
            probe,
        })
    }

    /// The planted bugs the system called `name` can be built with (`None`
    /// when its factory reads no bug: [`SystemSpec::no_bug`]). Listed from
    /// the bug enum its factory reads, so a bug added to the enum is listed
    /// without being named twice.
    ///
    /// ```
    /// let registry = replisim::replication::registry();
    /// let bugs = registry.planted_bugs("raft").unwrap().unwrap();
    /// assert!(bugs.names.contains(&"vote-without-log-check"));
    /// assert_eq!(registry.planted_bugs("primary-backup").unwrap(), None);
    /// ```
    pub fn planted_bugs(&self, name: &str) -> Result<Option<PlantedBugs>, SystemError> {
        let probe = RefCell::new(None);
        self.build_with(name, &serde_json::Value::Null, None, Some(&probe))?;
        Ok(probe.into_inner())
    }

    /// Every planted bug of the systems a sweep covers ([`Registry::sweeps`]),
    /// once each, as (system, bug): on the first system in sweep order
    /// that has it (`ack-before-persist` on `sync`, not again on
    /// `semi-sync:1`, which shares the engine's bugs).
    pub fn every_planted_bug(&self) -> Result<Vec<(String, String)>, SystemError> {
        let mut kinds = Vec::new();
        let mut bugs = Vec::new();
        for system in self.sweeps() {
            let Some(planted) = self.planted_bugs(&system)? else {
                continue;
            };
            if kinds.contains(&planted.kind) {
                continue;
            }
            kinds.push(planted.kind);
            bugs.extend(
                planted
                    .names
                    .iter()
                    .map(|bug| (system.clone(), bug.to_string())),
            );
        }
        Ok(bugs)
    }

    /// Builds the system a scenario names, with its configuration and bug.
    pub fn system_for(&self, scenario: &Scenario) -> Result<Rc<dyn System>, SystemError> {
        self.build(&scenario.system, &scenario.config, scenario.bug.as_deref())
    }

    /// Runs a scenario of one of these systems.
    pub fn run(&self, scenario: &Scenario) -> Result<Outcome, RunError> {
        run_system(scenario, self.system_for(scenario)?)
    }

    /// [`Registry::run`] with `options`.
    pub fn run_with(&self, scenario: &Scenario, options: RunOptions) -> Result<Outcome, RunError> {
        run_with(scenario, self.system_for(scenario)?, options)
    }

    fn known(&self) -> String {
        match self.families.is_empty() {
            true => "a registered system (none is)".into(),
            false => self.usage().join(", "),
        }
    }
}
