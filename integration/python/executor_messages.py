"""A pymesos scheduler that runs a task under a pymesos executor (echo_executor.py) and
exchanges framework messages with it, printing what it sees, one line per event, for
integration/tests/pymesos.rs to check.

Once the task runs it sends the executor `ping`; the executor answers `echo: ping` and finishes
the task. Then the scheduler stops the driver, which tears the framework down.

Usage: executor_messages.py <master host:port>
"""

import logging
import os
import sys
import threading

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler, decode_data, encode_data

TIMEOUT_SECS = 60
HERE = os.path.dirname(os.path.abspath(__file__))


def say(*words):
    print(*words, flush=True)


def resources():
    return [
        dict(name="cpus", type="SCALAR", scalar=dict(value=0.1)),
        dict(name="mem", type="SCALAR", scalar=dict(value=32)),
    ]


class ExecutorMessages(Scheduler):
    def __init__(self):
        self.launched = False
        self.finished = False
        self.echoed = False
        self.lock = threading.Lock()

    def resourceOffers(self, driver, offers):
        with self.lock:
            for offer in offers:
                if self.launched:
                    driver.declineOffer([offer.id], filters=dict(refuse_seconds=3600))
                    continue
                self.launched = True
                task = Dict()
                task.task_id.value = "echo"
                task.agent_id.value = offer.agent_id.value
                task.name = "echo"
                task.resources = resources()
                task.executor.executor_id.value = "echo-executor"
                task.executor.name = "echo executor"
                task.executor.command.value = "%s %s" % (
                    sys.executable,
                    os.path.join(HERE, "echo_executor.py"),
                )
                task.executor.resources = resources()
                driver.launchTasks([offer.id], [task], filters=dict(refuse_seconds=0))
                say("LAUNCHED")

    def statusUpdate(self, driver, update):
        say("UPDATE", update.task_id.value, update.state, update.get("message") or "-")
        with self.lock:
            if update.state == "TASK_RUNNING":
                driver.sendFrameworkMessage(
                    dict(value="echo-executor"),
                    dict(value=update.agent_id.value),
                    encode_data(b"ping"),
                )
            elif update.state == "TASK_FINISHED":
                self.finished = True
            self.maybe_done(driver)

    def frameworkMessage(self, driver, executor_id, agent_id, data):
        say("MESSAGE", executor_id.value, decode_data(data).decode("utf-8"))
        with self.lock:
            self.echoed = True
            self.maybe_done(driver)

    def maybe_done(self, driver):
        if self.finished and self.echoed:
            say("DONE")
            driver.stop()

    def error(self, driver, message):
        say("ERROR", message)
        driver.stop()


def main():
    # pymesos logs what goes wrong; the test shows stderr when a run fails.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    watchdog = threading.Timer(TIMEOUT_SECS, lambda: (say("TIMEOUT"), os._exit(2)))
    watchdog.daemon = True
    watchdog.start()
    framework = Dict()
    framework.user = "root"
    framework.name = "pymesos-executor"
    framework.hostname = "localhost"
    driver = MesosSchedulerDriver(ExecutorMessages(), framework, sys.argv[1], use_addict=True)
    driver.run()
    say("STOPPED")


if __name__ == "__main__":
    main()
