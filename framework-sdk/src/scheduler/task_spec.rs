//! [`TaskSpec`]: what a task needs and runs, before an offer gives it an agent and resources.

use std::time::Duration;

use strata_protocol::Resources;
use strata_protocol::ids::{AgentId, IdError, TaskId, validate_id};
use strata_protocol::mesos::{
    Bytes, CommandInfo, ContainerInfo, ContainerType, DockerImage, DurationInfo, Environment,
    EnvironmentVariable, Image, ImageType, KillPolicy, Label, Labels, MesosInfo, TaskInfo,
};

/// What `TaskId::new` calls a task ID in its errors.
const TASK_ID_KIND: &str = "task ID";

/// Why a [`TaskSpec`] cannot become a task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TaskSpecError {
    #[error("invalid task id {id:?}: {source}")]
    Id {
        id: String,
        #[source]
        source: IdError,
    },
    #[error("task {id:?} asks for a negative or non-finite amount of {resource}")]
    Amount { id: String, resource: String },
    #[error("task {id:?} has an empty argv")]
    EmptyArgv { id: String },
}

/// A task to launch: its command, the resources it needs, and how it runs.
///
/// Built with [`TaskSpec::command`] or [`TaskSpec::argv`] and chained setters; turned into a
/// [`TaskInfo`] once an offer is chosen, by [`crate::scheduler::Offers::pack`] or
/// [`TaskSpec::to_task_info`]. The task ID defaults to the name.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    name: String,
    id: String,
    command: CommandInfo,
    cpus: f64,
    mem_mb: f64,
    disk_mb: f64,
    n_ports: u64,
    scalars: Vec<(String, f64)>,
    role: Option<String>,
    labels: Vec<Label>,
    kill_grace_period: Option<Duration>,
    image: Option<String>,
    data: Option<Vec<u8>>,
}

impl TaskSpec {
    /// Returns a task named `name` (also its ID) that runs `command_line` with `/bin/sh -c`.
    pub fn command(name: impl Into<String>, command_line: impl Into<String>) -> TaskSpec {
        TaskSpec::with_command(name.into(), CommandInfo::from_shell(command_line))
    }

    /// Returns a task named `name` (also its ID) that executes `argv[0]` with `argv` as its
    /// arguments, without a shell.
    pub fn argv<S: Into<String>>(
        name: impl Into<String>,
        argv: impl IntoIterator<Item = S>,
    ) -> TaskSpec {
        let arguments: Vec<String> = argv.into_iter().map(Into::into).collect();
        let command = CommandInfo {
            shell: Some(false),
            value: arguments.first().cloned(),
            arguments,
            ..CommandInfo::default()
        };
        TaskSpec::with_command(name.into(), command)
    }

    fn with_command(name: String, command: CommandInfo) -> TaskSpec {
        TaskSpec {
            id: name.clone(),
            name,
            command,
            cpus: 0.0,
            mem_mb: 0.0,
            disk_mb: 0.0,
            n_ports: 0,
            scalars: Vec::new(),
            role: None,
            labels: Vec::new(),
            kill_grace_period: None,
            image: None,
            data: None,
        }
    }

    /// Sets the task ID, which must be unique among the framework's live tasks.
    pub fn id(mut self, id: impl Into<String>) -> TaskSpec {
        self.id = id.into();
        self
    }

    /// Sets the CPUs the task needs.
    pub fn cpus(mut self, cpus: impl Into<f64>) -> TaskSpec {
        self.cpus = cpus.into();
        self
    }

    /// Sets the memory the task needs, in MiB.
    pub fn mem_mb(mut self, mem_mb: impl Into<f64>) -> TaskSpec {
        self.mem_mb = mem_mb.into();
        self
    }

    /// Sets the disk the task needs, in MiB.
    pub fn disk_mb(mut self, disk_mb: impl Into<f64>) -> TaskSpec {
        self.disk_mb = disk_mb.into();
        self
    }

    /// Asks for `n_ports` ports; packing picks the lowest the offer has free.
    pub fn ports(mut self, n_ports: u64) -> TaskSpec {
        self.n_ports = n_ports;
        self
    }

    /// Asks for `amount` of another scalar resource (`gpus`, a custom one).
    pub fn scalar(mut self, name: impl Into<String>, amount: impl Into<f64>) -> TaskSpec {
        self.scalars.push((name.into(), amount.into()));
        self
    }

    /// Sets an environment variable of the command.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> TaskSpec {
        self.command
            .environment
            .get_or_insert_with(Environment::default)
            .variables
            .push(EnvironmentVariable::new(name, value));
        self
    }

    /// Restricts the task to offers made for `role`; without it any offer will do.
    pub fn role(mut self, role: impl Into<String>) -> TaskSpec {
        self.role = Some(role.into());
        self
    }

    /// Adds a label to the task.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> TaskSpec {
        self.labels.push(Label {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the time between SIGTERM and SIGKILL when the task is killed.
    pub fn kill_grace_period(mut self, grace_period: Duration) -> TaskSpec {
        self.kill_grace_period = Some(grace_period);
        self
    }

    /// Runs the task in a container from the Docker image `image`, with the Mesos
    /// containerizer. Agents that cannot provision images fail such tasks at launch.
    pub fn image(mut self, image: impl Into<String>) -> TaskSpec {
        self.image = Some(image.into());
        self
    }

    /// Sets opaque data handed to the executor with the task.
    pub fn data(mut self, data: impl Into<Vec<u8>>) -> TaskSpec {
        self.data = Some(data.into());
        self
    }

    /// Returns the task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the task's ID as given (validated by [`TaskSpec::task_id`]).
    pub fn id_str(&self) -> &str {
        &self.id
    }

    /// Returns the role the task is restricted to, if any.
    pub fn required_role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Returns the number of ports the task asks for.
    pub fn n_ports(&self) -> u64 {
        self.n_ports
    }

    /// Returns the task ID, or why it is not valid.
    pub fn task_id(&self) -> Result<TaskId, TaskSpecError> {
        TaskId::new(self.id.clone()).map_err(|source| TaskSpecError::Id {
            id: self.id.clone(),
            source,
        })
    }

    /// Returns the scalar resources the task asks for, by name, leaving out zero amounts.
    pub fn scalar_demand(&self) -> Vec<(String, f64)> {
        self.scalar_demand_iter()
            .map(|(name, amount)| (name.to_owned(), amount))
            .collect()
    }

    /// Like [`TaskSpec::scalar_demand`], without copying names: packing asks for the demand
    /// of every pending spec at every offer, so this stays off the allocator.
    pub(crate) fn scalar_demand_iter(&self) -> impl Iterator<Item = (&str, f64)> {
        [
            ("cpus", self.cpus),
            ("mem", self.mem_mb),
            ("disk", self.disk_mb),
        ]
        .into_iter()
        .chain(
            self.scalars
                .iter()
                .map(|(name, amount)| (name.as_str(), *amount)),
        )
        .filter(|(_, amount)| *amount != 0.0)
    }

    /// Checks what can be checked before an offer is chosen: the ID, the amounts and the argv.
    pub fn validate(&self) -> Result<(), TaskSpecError> {
        // Checked in place: packing validates every pending spec at every offer, and building
        // a `TaskId` would copy the ID each time.
        validate_id(TASK_ID_KIND, &self.id).map_err(|source| TaskSpecError::Id {
            id: self.id.clone(),
            source,
        })?;
        for (resource, amount) in self.scalar_demand_iter() {
            if !amount.is_finite() || amount < 0.0 {
                return Err(TaskSpecError::Amount {
                    id: self.id.clone(),
                    resource: resource.to_owned(),
                });
            }
        }
        if self.command.shell == Some(false) && self.command.value.is_none() {
            return Err(TaskSpecError::EmptyArgv {
                id: self.id.clone(),
            });
        }
        Ok(())
    }

    /// Returns the task as a [`TaskInfo`] for `agent_id`, using `resources` (which must come
    /// from an offer of that agent, with its allocation role).
    pub fn to_task_info(
        &self,
        agent_id: &AgentId,
        resources: &Resources,
    ) -> Result<TaskInfo, TaskSpecError> {
        self.validate()?;
        let container = self.image.as_ref().map(|image| ContainerInfo {
            container_type: ContainerType::Mesos,
            volumes: Vec::new(),
            hostname: None,
            docker: None,
            mesos: Some(MesosInfo {
                image: Some(Image {
                    image_type: ImageType::Docker,
                    appc: None,
                    docker: Some(DockerImage {
                        name: image.clone(),
                        config: None,
                    }),
                    cached: None,
                }),
            }),
            network_infos: Vec::new(),
        });
        Ok(TaskInfo {
            name: self.name.clone(),
            task_id: self.task_id()?,
            agent_id: agent_id.clone(),
            resources: resources.to_wire(),
            executor: None,
            command: Some(self.command.clone()),
            container,
            health_check: None,
            check: None,
            kill_policy: self.kill_grace_period.map(|grace_period| KillPolicy {
                grace_period: Some(DurationInfo::from_duration(grace_period)),
            }),
            data: self.data.clone().map(Bytes::new),
            labels: (!self.labels.is_empty()).then(|| Labels {
                labels: self.labels.clone(),
            }),
            discovery: None,
            max_completion_time: None,
            limits: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent() -> AgentId {
        AgentId::new("a1").unwrap()
    }

    #[test]
    fn command_spec_becomes_a_shell_task_with_env_labels_and_kill_policy() {
        let resources = Resources::parse("cpus:0.5;mem:64", "*").unwrap();
        let spec = TaskSpec::command("web", "echo hi")
            .id("web-1")
            .cpus(0.5)
            .mem_mb(64)
            .env("PORT", "8080")
            .label("tier", "front")
            .kill_grace_period(Duration::from_secs(3));
        let task = spec.to_task_info(&agent(), &resources).unwrap();
        assert_eq!(task.name, "web");
        assert_eq!(task.task_id.as_str(), "web-1");
        assert_eq!(task.agent_id, agent());
        let command = task.command.unwrap();
        assert!(command.shell());
        assert_eq!(command.value.as_deref(), Some("echo hi"));
        let env = command.environment.unwrap();
        assert_eq!(
            env.variables,
            vec![EnvironmentVariable::new("PORT", "8080")]
        );
        assert_eq!(task.labels.unwrap().labels[0].key, "tier");
        assert_eq!(
            task.kill_policy
                .unwrap()
                .grace_period
                .unwrap()
                .to_duration(),
            Some(Duration::from_secs(3))
        );
        assert_eq!(Resources::try_from(task.resources).unwrap(), resources);
        assert!(task.container.is_none());
    }

    #[test]
    fn argv_spec_runs_without_a_shell() {
        let spec = TaskSpec::argv("ls", ["/bin/ls", "-l", "/tmp"]);
        let task = spec.to_task_info(&agent(), &Resources::new()).unwrap();
        let command = task.command.unwrap();
        assert!(!command.shell());
        assert_eq!(command.value.as_deref(), Some("/bin/ls"));
        assert_eq!(command.arguments, vec!["/bin/ls", "-l", "/tmp"]);
    }

    #[test]
    fn image_sets_a_mesos_container() {
        let spec = TaskSpec::command("t", "true").image("alpine:3");
        let task = spec.to_task_info(&agent(), &Resources::new()).unwrap();
        let container = task.container.unwrap();
        assert_eq!(container.container_type, ContainerType::Mesos);
        let image = container.mesos.unwrap().image.unwrap();
        assert_eq!(image.docker.unwrap().name, "alpine:3");
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        let err = TaskSpec::command("", "true").validate().unwrap_err();
        assert!(matches!(err, TaskSpecError::Id { .. }), "{err}");
        let err = TaskSpec::command("t", "true")
            .cpus(-1.0)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "task \"t\" asks for a negative or non-finite amount of cpus"
        );
        let err = TaskSpec::argv("t", Vec::<String>::new())
            .validate()
            .unwrap_err();
        assert!(matches!(err, TaskSpecError::EmptyArgv { .. }));
    }

    #[test]
    fn validate_refuses_an_id_exactly_as_task_id_does() {
        for id in ["", ".", "..", "a/b", "a\\b", "a\nb", &"x".repeat(300)] {
            let spec = TaskSpec::command("t", "true").id(id);
            assert_eq!(
                spec.validate().unwrap_err(),
                spec.task_id().unwrap_err(),
                "id {id:?}"
            );
        }
        assert!(TaskSpec::command("t-1.ok_", "true").validate().is_ok());
    }
}
