"""Several hosts on one machine, each a network namespace with a hostname, a mount namespace
and folders of its own (the others' hidden): an API host and worker hosts that share only
PostgreSQL, Redis and an S3 server, reached over a bridge. A dataset uploaded to the API trains
on a worker host; a worker host killed outright has its job resumed on another from the stored
checkpoint; a host that joins takes queued jobs, and one that leaves stops counting."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import requests

from shared import workers
from shared.commands.database import migrate
from shared.db import _engines, session_scope
from shared.models import Job, JobStatus
from tests.chaos.conftest import FAST
from tests.conftest import make_user
from tests.s3 import CREDENTIALS
from tests.specs import quickstart
from tests.support import ROOT, dies_with_us, service_env, wait_until

pytestmark = [pytest.mark.timeout(400), pytest.mark.slow]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
BUCKET = "trainq-hosts"
WEB_PORT = 8000  # each host has its own ports: the API's own namespace


# Run in a host's own UTS and mount namespaces: its hostname; the other hosts' folders and the
# shared services' files hidden under empty tmpfs, its own folder bound back in place.
ISOLATE = """set -e
hostname "$0"
mount --bind "$1" "$2"
mount -t tmpfs tmpfs "$3"
mkdir -p "$1"
mount --bind "$2" "$1"
mount -t tmpfs tmpfs "$4"
mount -t tmpfs tmpfs "$5"
shift 5
exec "$@"
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _can_make_namespaces() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
        return False
    probe = f"tqprobe{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return True


class Network:
    """A bridge in this namespace with the shared services' address (.1) and a namespace per
    host joined to it by a veth pair; names carry a suffix of this run's own."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:5]
        taken = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        while True:
            prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
            if f" {prefix}." not in taken:
                break
        self.prefix, self.address = prefix, f"{prefix}.1"
        self.bridge = f"tq{self.tag}br"
        self.hosts: dict[str, str] = {}  # host name -> namespace
        self.links: list[str] = [self.bridge]
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def add_host(self, name: str) -> str:
        """A namespace with an address of its own on the bridge; its address."""
        n = len(self.hosts) + 2
        ns, outside, inside = f"tq{self.tag}{name}", f"tq{self.tag}h{n}", f"tq{self.tag}p{n}"
        self.hosts[name] = ns
        _ip("netns", "add", ns)
        self.links.insert(0, outside)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("link", "set", inside, "netns", ns)
        _ip("-n", ns, "addr", "add", f"{self.prefix}.{n}/24", "dev", inside)
        _ip("-n", ns, "link", "set", inside, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        return f"{self.prefix}.{n}"

    def pids(self, name: str) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.hosts[name]], capture_output=True,
                             text=True).stdout  # fmt: skip
        return [int(p) for p in out.split()]

    def kill_host(self, name: str) -> None:
        """SIGKILL every process in the host's namespace, until none is left."""

        def gone() -> bool:
            for pid in self.pids(name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return not self.pids(name)

        wait_until(gone, 30, f"every process of {name} to die")

    def remove(self) -> None:
        for name, ns in self.hosts.items():
            with contextlib.suppress(Exception):
                self.kill_host(name)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in self.links:  # a veth would outlive its namespace's deferred cleanup a while
            subprocess.run(["ip", "link", "del", link], capture_output=True)


class Postgres:
    """A PostgreSQL server of the test's own on the bridge address, trusting the hosts' subnet."""

    def __init__(self, folder: Path, address: str, prefix: str) -> None:
        self.folder = folder
        folder.mkdir()
        shutil.chown(folder, "postgres", "postgres")
        self.data, self.port = folder / "data", random.randint(20000, 29999)
        self.url = f"postgresql+psycopg://postgres@{address}:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {prefix}.0/24 trust\n")
        options = f"-p {self.port} -k {folder} -c listen_addresses={address} -c fsync=off"
        self._run("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(folder / "pg.log"),
                  "-o", options)  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / tool), *args],
                       check=True, stdout=subprocess.DEVNULL, cwd=self.folder)  # fmt: skip

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-D", str(self.data), "-m", "immediate")


class Hosts:
    """The shared services and the hosts, each host's processes started in its namespace."""

    def __init__(self, workdir: Path, net: Network) -> None:
        self.workdir, self.net = workdir, net
        self.services = workdir / "services"  # the logs, Redis's folder
        self.services.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[str, Path] = {}
        self.pg: Postgres | None = None
        self.redis_url = self.s3 = self.api = ""
        self.headers: dict[str, str] = {}

    def start_services(self) -> None:
        """PostgreSQL, Redis and the S3 server on the bridge address; the schema and a user."""
        net = self.net
        self.pg = Postgres(self.workdir / "pg", net.address, net.prefix)
        self.redis_url = f"redis://{net.address}:{self._serve_redis()}/0"
        self.s3 = self._serve_s3()
        migrate(self.pg.url)
        _, token = make_user(self.pg.url, "alice")
        self.headers = {"Authorization": f"Bearer {token}"}

    @property
    def db_url(self) -> str:
        assert self.pg is not None
        return self.pg.url

    def _background(self, name: str, args: list[str], **kwargs: Any) -> None:
        log = self.services / f"{name}.log"
        self.logs[name] = log
        self.procs.append(subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                           preexec_fn=dies_with_us(), **kwargs))  # fmt: skip

    def _serve_redis(self) -> int:
        port = random.randint(30000, 39999)
        self._background("redis", ["redis-server", "--port", str(port), "--bind",
                                   self.net.address, "--protected-mode", "no", "--save", "",
                                   "--appendonly", "no",
                                   "--dir", str(self.services)])  # fmt: skip
        client = redis.Redis(host=self.net.address, port=port)

        def up() -> bool:
            with contextlib.suppress(redis.ConnectionError):
                return bool(client.ping())
            return False

        wait_until(up, 15, "redis-server")
        return port

    def _serve_s3(self) -> str:
        port = random.randint(40000, 49999)
        binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self._background("moto", [binary, "-H", self.net.address, "-p", str(port)])
        endpoint = f"http://{self.net.address}:{port}"
        wait_until(lambda: self._answers(f"{endpoint}/moto-api/"), 30, "moto_server")
        fs = self.fs(endpoint)
        fs.mkdir(BUCKET)
        return endpoint

    @staticmethod
    def fs(endpoint: str) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=endpoint, key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                 secret=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                 use_listings_cache=False)  # fmt: skip

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            requests.get(url, timeout=2)
        except requests.RequestException:
            return False
        return True

    def spawn(self, host: str, name: str, args: list[str], **env: str) -> None:
        """Run `python -m args` in the host's namespace, under the host's own hostname and
        folders, in a session of its own."""
        var = self.workdir / "hosts" / host
        var.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in FAST.items() if k != "TRAINQ_WORKER_SLOTS"}
        environment = service_env(
            self.db_url, self.redis_url, var, TRAINQ_DATASETS_DIR=str(var / "datasets"),
            TRAINQ_STORAGE_URL=f"s3://{BUCKET}/trainq", TRAINQ_S3_ENDPOINT_URL=self.s3,
            TRAINQ_MAX_RUNNING_PER_USER="10", **CREDENTIALS, **settings, **env,
        )  # fmt: skip
        (var / "tmp").mkdir(exist_ok=True)
        environment["TMPDIR"] = str(var / "tmp")
        stash = self.workdir / "stash" / host
        stash.mkdir(parents=True, exist_ok=True)
        hostname = self.net.hosts[host]
        command = ["ip", "netns", "exec", hostname, "unshare", "--uts", "--mount", "--", "sh",
                   "-c", ISOLATE, hostname, str(var), str(stash), str(self.workdir / "hosts"),
                   str(self.workdir / "pg"), str(self.services), sys.executable, "-m",
                   *args]  # fmt: skip
        self._background(f"{host}-{name}", command, cwd=ROOT, env=environment,
                         start_new_session=True)  # fmt: skip

    def start_api(self) -> None:
        address = self.net.add_host("api")
        self.api = f"http://{address}:{WEB_PORT}"
        self.spawn("api", "web", ["gunicorn", "web.wsgi:app", "--bind", f"0.0.0.0:{WEB_PORT}",
                                  "--worker-class", "gthread", "--workers", "1", "--threads",
                                  "4", "--no-control-socket"],
                   TRAINQ_WEB_WORKERS="1", TRAINQ_WEB_THREADS="4")  # fmt: skip
        var = self.workdir / "hosts" / "api"
        self.spawn("api", "periodic", ["celery", "-A", "worker", "worker", "--queues",
                                       "trainq.periodic", "--pool", "solo", "--beat",
                                       "--loglevel", "INFO", "--hostname", "periodic@%h",
                                       "--schedule", str(var / "celerybeat-schedule")],
                   TRAINQ_WARM_TF="0")  # fmt: skip
        self.wait(lambda: self._healthy(), "the API to answer", 90)

    def _healthy(self) -> bool:
        try:
            return requests.get(self.api + "/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def start_worker(self, host: str) -> str:
        """A training worker host with one slot; its Celery node name."""
        self.net.add_host(host)
        self.spawn(host, "worker", ["celery", "-A", "worker", "worker", "--queues", "celery",
                                    "--concurrency", "1", "--loglevel", "INFO",
                                    "--hostname", "train@%h"])  # fmt: skip
        return f"train@{self.net.hosts[host]}"

    def live(self) -> dict[str, int]:
        """Live worker -> its slots, as announced in Redis."""
        return {w.name: w.slots for w in workers.live(redis.Redis.from_url(self.redis_url))}

    def submit(self, spec: dict[str, Any]) -> str:
        r = requests.post(f"{self.api}/api/v1/jobs", json=spec, headers=self.headers, timeout=90)
        assert r.status_code == 202, r.text
        return str(r.json()["id"])

    def reasons(self, job_ids: list[str]) -> str:
        """Why each of these jobs waits, as the API says (empty for one not waiting)."""
        said = []
        for job_id in job_ids:
            r = requests.get(f"{self.api}/api/v1/jobs/{job_id}", headers=self.headers, timeout=30)
            said.append(str((r.json().get("queue") or {}).get("reason", "")))
        return " | ".join(said)

    def job(self, job_id: str) -> Job:
        with session_scope(self.db_url) as s:
            job = s.get(Job, job_id)
            assert job is not None
            _ = job.epochs, job.artifacts
            return job

    def wait(self, check: Any, what: str, timeout: float = 180) -> Any:
        try:
            return wait_until(check, timeout, what, every=0.1)
        except AssertionError:
            self.dump()
            raise

    def wait_finished(self, job_id: str, timeout: float = 180) -> Job:
        def finished() -> Job | None:
            job = self.job(job_id)
            return job if job.status not in (JobStatus.queued, JobStatus.running) else None

        return self.wait(finished, f"job {job_id} to finish", timeout)

    def dump(self) -> None:
        for name, log in self.logs.items():
            print(f"----- {name}.log -----")
            print(log.read_text(errors="replace")[-5000:])

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)


@pytest.fixture
def hosts() -> Iterator[Hosts]:
    if not _can_make_namespaces():
        pytest.skip("needs root, iproute2 and unshare to make network namespaces")
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
        pytest.skip("needs PostgreSQL 15's initdb and pg_ctl, and runuser")
    workdir = Path(tempfile.mkdtemp(prefix="trainq-hosts-"))
    os.chmod(workdir, 0o755)  # the postgres user reaches its folder inside
    net = Network()
    made = Hosts(workdir, net)
    try:
        made.start_services()
        yield made
    finally:
        net.remove()  # every process in the hosts' namespaces, then the namespaces and veths
        made.stop()  # the shared services
        for url in [u for u in _engines if made.pg is not None and f":{made.pg.port}/" in u]:
            _engines.pop(url).dispose()
        if (workdir / "pg" / "data" / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "stop",
                            "-w", "-D", str(workdir / "pg" / "data"), "-m", "immediate"],
                           capture_output=True)  # fmt: skip
        shutil.rmtree(workdir, ignore_errors=True)


def _sample() -> bytes:
    with np.load(ROOT / "shared" / "datasets" / "data" / "mnist_sample.npz") as data:
        arrays = {"x_train": data["x_train"][:1000], "y_train": data["y_train"][:1000],
                  "x_test": data["x_test"][:200], "y_test": data["y_test"][:200]}  # fmt: skip
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _node(job: Job) -> str:
    """The worker node that ran the job, checked against the host its worker column names."""
    host = str(job.worker).rsplit(":", 1)[0]  # the training process's hostname:pid
    assert job.sent_to == f"train@{host}", (job.sent_to, job.worker)
    return str(job.sent_to)


def _epochs(job: Job) -> list[int]:
    return [e.epoch for e in job.epochs]


def test_hosts_share_only_the_database_redis_and_the_store(hosts: Hosts) -> None:
    began = time.monotonic()
    hosts.start_api()
    one, two = hosts.start_worker("w1"), hosts.start_worker("w2")
    hosts.wait(lambda: hosts.live() == {one: 1, two: 1}, "two worker hosts to announce", 120)

    # 1. A dataset uploaded to the API host trains on a worker host; the API predicts with and
    # serves the model it never trained.
    content = _sample()
    r = requests.post(f"{hosts.api}/api/v1/datasets", headers=hosts.headers, timeout=60,
                      files={"file": ("mnist.npz", content)}, data={"name": "mnist"})  # fmt: skip
    assert r.status_code == 201, r.text
    dataset = {"id": r.json()["id"], "scale": 255.0}
    first = hosts.submit({**quickstart(epochs=1), "dataset": dataset})
    job = hosts.wait_finished(first)
    assert job.status == JobStatus.succeeded, job.error
    assert _node(job) in (one, two), job.worker
    keras = {a.format: a for a in job.artifacts}["keras"]
    image = np.load(io.BytesIO(content))["x_test"][:2].tolist()
    r = requests.post(f"{hosts.api}/api/v1/jobs/{first}/predict", headers=hosts.headers,
                      json={"instances": image}, timeout=120)  # fmt: skip
    assert r.status_code == 200 and len(r.json()["predictions"]) == 2, r.text
    r = requests.get(f"{hosts.api}/api/v1/jobs/{first}/model", headers=hosts.headers, timeout=60)
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == keras.sha256
    api_files = [p for p in (hosts.workdir / "hosts" / "api").rglob("*.keras")]
    assert [p.name for p in api_files] == [f"{keras.sha256}.keras"]  # its cache, from the store
    api_pid = str(hosts.net.pids("api")[0])
    look = ["nsenter", "--target", api_pid, "--mount", "ls", "-A", str(hosts.workdir / "hosts")]
    seen = subprocess.run(look, capture_output=True, text=True)
    assert seen.stdout.split() == ["api"], seen  # the API host sees no worker host's folder
    print(f"scenario 1 done at {time.monotonic() - began:.0f} s")

    # 2. Every process of the host training a job is killed mid-epoch: the other host resumes
    # it from the checkpoint in the store, each epoch recorded once.
    epochs = 5
    second = hosts.submit({**quickstart(epochs=epochs, batch_size=16), "dataset": dataset})
    job = hosts.wait(lambda: (j := hosts.job(second)).epochs_done >= 2 and j, "epoch 2 to end")
    victim, survivor = ("w1", two) if _node(job) == one else ("w2", one)
    hosts.net.kill_host(victim)
    done_at_kill = job.epochs_done
    assert done_at_kill < epochs
    hosts.wait(lambda: set(hosts.live()) == {survivor}, "the killed host to stop counting", 30)
    job = hosts.wait_finished(second)
    assert job.status == JobStatus.succeeded, job.error
    assert _epochs(job) == list(range(1, epochs + 1))
    assert job.attempt == 2 and job.first_epoch is not None and job.first_epoch > 1
    assert _node(job) == survivor
    print(f"scenario 2 done at {time.monotonic() - began:.0f} s")

    # 3. A third host joins while jobs wait for the one slot left, and takes them with no setting
    # changed; when it leaves, its slot stops counting. The one slot left is held by a long job,
    # so the waiting jobs can only start on the new host (short jobs could otherwise all end on
    # the survivor while the third host is still starting).
    long = hosts.submit({**quickstart(epochs=500, batch_size=16), "dataset": dataset})
    hosts.wait(lambda: hosts.job(long).epochs_done >= 1, "the long job to hold the one slot")
    assert _node(hosts.job(long)) == survivor
    queued = [hosts.submit({**quickstart(epochs=2), "dataset": dataset}) for _ in range(2)]
    hosts.wait(lambda: "all 1 worker slots are busy" in hosts.reasons(queued),
               "jobs to wait for the one slot")  # fmt: skip
    three = hosts.start_worker("w3")
    hosts.wait(lambda: hosts.live() == {survivor: 1, three: 1}, "the third host to announce", 120)
    finished = [hosts.wait_finished(j) for j in queued]
    assert all(j.status == JobStatus.succeeded for j in finished), [j.error for j in finished]
    assert {_node(j) for j in finished} == {three}, [j.worker for j in finished]
    r = requests.post(f"{hosts.api}/api/v1/jobs/{long}/cancel", headers=hosts.headers, timeout=30)
    assert r.status_code == 202, r.text
    assert hosts.wait_finished(long).status == JobStatus.cancelled
    for pid in hosts.net.pids("w3"):  # it leaves as `docker stop` would stop it
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    hosts.wait(lambda: hosts.live() == {survivor: 1}, "the third host to withdraw", 30)
    hosts.wait(lambda: not hosts.net.pids("w3"), "the third host's processes to end", 60)
    again = [hosts.submit({**quickstart(epochs=2), "dataset": dataset}) for _ in range(2)]
    hosts.wait(lambda: "all 1 worker slots are busy" in hosts.reasons(again),
               "a job to wait for the one slot again")  # fmt: skip
    for job_id in again:
        requests.post(f"{hosts.api}/api/v1/jobs/{job_id}/cancel", headers=hosts.headers,
                      timeout=30)  # fmt: skip
    print(f"scenario 3 done at {time.monotonic() - began:.0f} s")
