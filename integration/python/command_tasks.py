"""A pymesos scheduler that runs two command tasks on a Mesos-compatible master and prints what
it sees, one line per event, for integration/tests/pymesos.rs to check.

It launches `short` (exits at once) and `long` (sleeps) from its first offer and declines every
later offer with a filter. Once `long` runs, it reconciles it explicitly, and when reconciliation
reports it running, kills it. When `short` has finished and `long` is killed it stops the driver,
which tears the framework down. Status updates are acknowledged by pymesos itself (implicit
acknowledgements).

Usage: command_tasks.py <master host:port>
"""

import logging
import os
import sys
import threading

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

TIMEOUT_SECS = 60


def say(*words):
    print(*words, flush=True)


def command_task(agent_id, task_id, command):
    task = Dict()
    task.task_id.value = task_id
    task.agent_id.value = agent_id
    task.name = task_id
    task.command.value = command
    task.resources = [
        dict(name="cpus", type="SCALAR", scalar=dict(value=0.1)),
        dict(name="mem", type="SCALAR", scalar=dict(value=32)),
    ]
    return task


class CommandTasks(Scheduler):
    def __init__(self):
        self.launched = False
        self.reconciled = False
        self.finished = set()
        self.lock = threading.Lock()

    def registered(self, driver, framework_id, master_info):
        say("REGISTERED", framework_id.value, master_info.get("version", ""))

    def resourceOffers(self, driver, offers):
        with self.lock:
            for offer in offers:
                if self.launched:
                    driver.declineOffer([offer.id], filters=dict(refuse_seconds=3600))
                    say("DECLINED")
                    continue
                self.launched = True
                agent_id = offer.agent_id.value
                tasks = [
                    command_task(agent_id, "short", "echo hello from pymesos"),
                    command_task(agent_id, "long", "sleep 1000"),
                ]
                driver.launchTasks([offer.id], tasks, filters=dict(refuse_seconds=0))
                say("LAUNCHED", agent_id)

    def statusUpdate(self, driver, update):
        task_id = update.task_id.value
        state = update.state
        reason = update.get("reason", "-")
        say("UPDATE", task_id, state, reason)
        with self.lock:
            if task_id == "long" and state == "TASK_RUNNING":
                if reason == "REASON_RECONCILIATION":
                    driver.killTask(dict(value="long"))
                elif not self.reconciled:
                    self.reconciled = True
                    driver.reconcileTasks([dict(task_id=dict(value="long"))])
            if state in ("TASK_FINISHED", "TASK_KILLED"):
                self.finished.add(task_id)
            if self.finished == {"short", "long"}:
                say("DONE")
                driver.stop()

    def error(self, driver, message):
        say("ERROR", message)
        driver.stop()


def main():
    # pymesos logs what goes wrong; the test shows stderr when a run fails.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    master = sys.argv[1]
    # A stuck run fails the test rather than hanging it.
    watchdog = threading.Timer(TIMEOUT_SECS, lambda: (say("TIMEOUT"), os._exit(2)))
    watchdog.daemon = True
    watchdog.start()
    framework = Dict()
    framework.user = "root"
    framework.name = "pymesos-conformance"
    framework.hostname = "localhost"
    driver = MesosSchedulerDriver(CommandTasks(), framework, master, use_addict=True)
    driver.run()
    say("STOPPED")


if __name__ == "__main__":
    main()
