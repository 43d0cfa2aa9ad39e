"""A pymesos executor: reports its task running, answers each framework message with
`echo: <message>`, then finishes the task.

The agent starts it with the Mesos executor environment (MESOS_AGENT_ENDPOINT, ...), and it
speaks the v1 executor HTTP API to the agent.
"""

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


class EchoExecutor(Executor):
    def __init__(self):
        self.task = None

    def status(self, driver, state, message=""):
        driver.sendStatusUpdate(
            dict(
                task_id=self.task["task_id"],
                agent_id=self.task["agent_id"],
                state=state,
                message=message,
            )
        )

    def launchTask(self, driver, task):
        self.task = task
        self.status(driver, "TASK_RUNNING")

    def frameworkMessage(self, driver, message):
        text = decode_data(message).decode("utf-8")
        driver.sendFrameworkMessage(encode_data(("echo: " + text).encode("utf-8")))
        self.status(driver, "TASK_FINISHED", "echoed " + text)

    def killTask(self, driver, task_id):
        self.status(driver, "TASK_KILLED")


if __name__ == "__main__":
    MesosExecutorDriver(EchoExecutor(), use_addict=True).run()
