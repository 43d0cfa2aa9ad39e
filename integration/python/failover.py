"""A pymesos scheduler that is restarted with its framework ID, printing what it sees, one line
per event, for integration/tests/pymesos.rs to check.

  failover.py <master> first
      Subscribes (with a failover timeout), launches `survivor` (a sleeping command task),
      acknowledges its updates explicitly and, once it runs, prints `FRAMEWORK <id>` and stops
      without tearing the framework down, as a scheduler process that dies would.

  failover.py <master> again <framework id>
      Resubscribes with that ID, reconciles implicitly (the master reports `survivor` running),
      revives (the first instance's filters go), declines its first offer with a long filter,
      suppresses offers (and prints the suppressed roles the master's `/master/state` shows),
      revives again (the resources come back at once), then kills `survivor` and stops,
      tearing the framework down.
"""

import json
import logging
import os
import sys
import threading
import urllib.request

from addict import Dict
from pymesos import MesosSchedulerDriver, Scheduler

TIMEOUT_SECS = 60


def say(*words):
    print(*words, flush=True)


class First(Scheduler):
    def __init__(self):
        self.launched = False
        self.lock = threading.Lock()

    def resourceOffers(self, driver, offers):
        with self.lock:
            for offer in offers:
                if self.launched:
                    driver.declineOffer([offer.id], filters=dict(refuse_seconds=3600))
                    continue
                self.launched = True
                task = Dict()
                task.task_id.value = "survivor"
                task.agent_id.value = offer.agent_id.value
                task.name = "survivor"
                task.command.value = "sleep 1000"
                task.resources = [
                    dict(name="cpus", type="SCALAR", scalar=dict(value=0.1)),
                    dict(name="mem", type="SCALAR", scalar=dict(value=32)),
                ]
                driver.launchTasks([offer.id], [task], filters=dict(refuse_seconds=0))

    def statusUpdate(self, driver, update):
        say("UPDATE", update.task_id.value, update.state, update.get("reason") or "-")
        driver.acknowledgeStatusUpdate(update)
        if update.state == "TASK_RUNNING":
            say("FRAMEWORK", driver.framework_id)
            driver.stop(failover=True)


class Again(Scheduler):
    def __init__(self):
        self.reconciled = False
        self.offers_seen = 0
        self.killed = False
        self.lock = threading.Lock()

    def reregistered(self, driver, master_info):
        # pymesos calls this, not `registered`, when it subscribed with an ID.
        say("REREGISTERED", driver.framework_id)
        driver.reconcileTasks([])
        # The first instance declined with a long filter; offers come back only on revive.
        driver.reviveOffers()

    def resourceOffers(self, driver, offers):
        with self.lock:
            for offer in offers:
                self.offers_seen += 1
                driver.declineOffer([offer.id], filters=dict(refuse_seconds=3600))
                if self.offers_seen == 1:
                    say("DECLINED")
                    driver.suppressOffers()
                    say("SUPPRESSED", " ".join(self.suppressed_roles(driver)))
                    driver.reviveOffers()
                elif self.offers_seen == 2:
                    say("REOFFERED")
            self.maybe_kill(driver)

    def suppressed_roles(self, driver):
        """The roles the master has suppressed for this framework, from its `/master/state`."""
        with urllib.request.urlopen("http://%s/master/state" % driver.master) as response:
            state = json.load(response)
        for framework in state["frameworks"]:
            if framework["id"] == driver.framework_id:
                return framework["suppressed_roles"]
        return []

    def statusUpdate(self, driver, update):
        say("UPDATE", update.task_id.value, update.state, update.get("reason") or "-")
        with self.lock:
            if update.state == "TASK_RUNNING" and update.get("reason") == "REASON_RECONCILIATION":
                self.reconciled = True
                self.maybe_kill(driver)
            elif update.state == "TASK_KILLED":
                say("DONE")
                driver.stop()

    def maybe_kill(self, driver):
        if self.reconciled and self.offers_seen >= 2 and not self.killed:
            self.killed = True
            driver.killTask(dict(value="survivor"))

    def error(self, driver, message):
        say("ERROR", message)
        driver.stop()


def main():
    # pymesos logs what goes wrong; the test shows stderr when a run fails.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    master, phase = sys.argv[1], sys.argv[2]
    watchdog = threading.Timer(TIMEOUT_SECS, lambda: (say("TIMEOUT"), os._exit(2)))
    watchdog.daemon = True
    watchdog.start()
    framework = Dict()
    framework.user = "root"
    framework.name = "pymesos-failover"
    framework.hostname = "localhost"
    framework.failover_timeout = 3600.0
    if phase == "first":
        scheduler, implicit_acks = First(), False
    else:
        framework.id.value = sys.argv[3]
        scheduler, implicit_acks = Again(), True
    driver = MesosSchedulerDriver(
        scheduler,
        framework,
        master,
        use_addict=True,
        implicit_acknowledgements=implicit_acks,
    )
    driver.run()
    say("STOPPED")


if __name__ == "__main__":
    main()
