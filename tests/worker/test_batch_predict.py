"""A batch prediction in the worker: every row of a split predicted by chunk, as serving does."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from shared import storage
from shared.batch import service
from shared.batch.spec import BatchRequest
from shared.commands.database import migrate
from shared.datasets.builtin import load
from shared.db import session_scope
from shared.ml import batch_predict, serving
from shared.models import BatchChunk, Job, JobStatus, User, utcnow
from shared.settings import Settings
from tests.conftest import make_user
from tests.specs import quickstart
from worker.training import run_job

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, str]:
    tmp = tmp_path_factory.mktemp("batch")
    settings = Settings(
        var_dir=tmp, database_url=f"sqlite:///{tmp / 'db.sqlite'}",
        redis_url="redis://127.0.0.1:1/0", artifacts=tmp / "artifacts",
    )  # fmt: skip
    migrate(settings.database_url)
    owner, _ = make_user(settings.database_url, "alice")
    spec = quickstart(epochs=1, validation_split=0.0)
    with session_scope(settings.database_url) as s:
        job = Job(owner_id=owner, name="j", spec=spec, epochs_total=1, status=JobStatus.queued)
        s.add(job)
        s.flush()
        job_id = job.id
    run_job(settings, job_id)
    return settings, owner, job_id


def _submit(settings: Settings, owner: int, body: dict[str, object]) -> str:
    with session_scope(settings.database_url) as s:
        user = s.get(User, owner)
        assert user is not None
        return service.create(s, user, BatchRequest.model_validate(body), settings).id


def _served(settings: Settings, model_job: str, x: Any) -> dict[str, np.ndarray]:
    """What serving answers for rows ``x`` with the job's model."""
    with session_scope(settings.database_url) as s:
        model = next(a for a in s.get_one(Job, model_job).artifacts if a.format == "keras")
        model_path, model_sha = model.path, model.sha256
    served = batch_predict.load_model(settings, model_path, model_sha)
    (head,) = serving.predict(served, {served.signature.inputs[0].name: x}, 255.0)
    assert head.logits is not None and head.probabilities is not None
    return {"logits": head.logits, "probabilities": head.probabilities,
            "classes": np.asarray(head.classes)}  # fmt: skip


def test_a_batch_prediction_matches_serving_row_by_row(
    trained: tuple[Settings, int, str], tmp_path: Path
) -> None:
    settings, owner, model_job = trained
    body = {"job_id": model_job, "dataset": {"name": "mnist-sample"}, "split": "test",
            "chunk_rows": 3000}  # fmt: skip
    job_id = _submit(settings, owner, body)
    run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        assert (job.status, job.epochs_done, job.epochs_total) == (JobStatus.succeeded, 4, 4)
        user = s.get(User, owner)
        assert user is not None
        key = service.result(s, user, job_id).path
    out = tmp_path / "result.npz"
    storage.artifacts(settings).get(key, out)
    x = load("mnist-sample").x_test
    assert x is not None
    head = _served(settings, model_job, x)
    with np.load(out, allow_pickle=False) as result:
        assert result["logits"].shape == (len(x), 10) == (10_000, 10)
        np.testing.assert_allclose(result["logits"], head["logits"], atol=1e-5)
        np.testing.assert_allclose(result["probabilities"], head["probabilities"], atol=1e-5)
        assert (result["classes"] == head["classes"]).all()
        assert result["bad_rows"].shape == (0,)


class _Killed(BaseException):
    """The worker process dying mid-way: nothing of the job is written after it."""


def test_a_killed_batch_prediction_resumes_without_redoing_its_chunks(
    trained: tuple[Settings, int, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings, owner, model_job = trained
    settings = settings.model_copy(update={"stale_seconds": 1})
    body = {"job_id": model_job, "dataset": {"name": "mnist-sample"}, "split": "train",
            "chunk_rows": 1000}  # fmt: skip
    job_id = _submit(settings, owner, body)
    predicted: list[int] = []
    chunk = batch_predict.Predictor.chunk

    def counted(self: batch_predict.Predictor, raw: list[np.ndarray], first: int) -> Any:
        if first == 2000 and not predicted.count(2000):
            predicted.append(first)
            raise _Killed  # after chunks 0 and 1 were recorded, while chunk 2 is predicted
        predicted.append(first)
        return chunk(self, raw, first)

    monkeypatch.setattr(batch_predict.Predictor, "chunk", counted)
    with pytest.raises(_Killed):
        run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        job = s.get_one(Job, job_id)
        assert (job.status, job.epochs_done) == (JobStatus.running, 2)
        job.heartbeat_at = utcnow() - timedelta(seconds=60)  # its worker is gone
    run_job(settings, job_id)  # another worker takes it over
    with session_scope(settings.database_url) as s:
        job = s.get_one(Job, job_id)
        assert (job.status, job.epochs_done, job.attempt) == (JobStatus.succeeded, 5, 2)
        attempts = dict(
            s.execute(
                select(BatchChunk.chunk, BatchChunk.attempt).where(BatchChunk.job_id == job_id)
            ).all()
        )
    assert predicted == [0, 1000, 2000, 2000, 3000, 4000]  # chunks 0 and 1 never again
    assert {c: attempts[c] for c in range(5)} == {0: 1, 1: 1, 2: 2, 3: 2, 4: 2}
    with session_scope(settings.database_url) as s:
        user = s.get_one(User, owner)
        key = service.result(s, user, job_id).path
    storage.artifacts(settings).get(key, tmp_path / "resumed.npz")
    with np.load(tmp_path / "resumed.npz", allow_pickle=False) as result:
        logits = result["logits"]
    x = load("mnist-sample").x_train
    # Every row once, the chunks of both attempts joined in order.
    np.testing.assert_allclose(logits, _served(settings, model_job, x)["logits"], atol=1e-5)


def test_a_bad_row_is_reported_by_its_index_and_the_others_predicted(
    trained: tuple[Settings, int, str],
) -> None:
    settings, _, model_job = trained
    with session_scope(settings.database_url) as s:
        model = next(a for a in s.get_one(Job, model_job).artifacts if a.format == "keras")
        path, sha256 = model.path, model.sha256
    predictor = batch_predict.Predictor(batch_predict.load_model(settings, path, sha256), 255.0)
    x = load("mnist-sample").x_test
    assert isinstance(x, np.ndarray)
    rows = x[:10].astype(np.float32)
    rows[3, 5, 5], rows[7, 0, 0] = np.nan, np.inf
    chunk = predictor.chunk([rows], 1000)  # the chunk's first row is row 1000 of the input
    assert [i for i, _ in chunk.bad] == [1003, 1007] == chunk.arrays["bad_rows"].tolist()
    name = predictor.inputs[0]
    assert [r for _, r in chunk.bad] == [f"NaN or infinite value in input {name!r}"] * 2
    assert np.isnan(chunk.arrays["logits"][[3, 7]]).all()
    assert chunk.arrays["classes"][[3, 7]].tolist() == [-1, -1]
    good = [0, 1, 2, 4, 5, 6, 8, 9]
    want = _served(settings, model_job, x[:10][good])
    np.testing.assert_allclose(chunk.arrays["logits"][good], want["logits"], atol=1e-5)


def _variable_length_models() -> list[Any]:
    import keras

    same = keras.Sequential([keras.Input((None, 4)), keras.layers.Conv1D(3, 3, padding="same")])
    pooled = keras.Sequential([keras.Input((None, 4)), keras.layers.Conv1D(3, 5),
                               keras.layers.GlobalMaxPooling1D(),
                               keras.layers.Dense(2)])  # fmt: skip
    return [same, pooled]


@pytest.mark.parametrize("which", [0, 1], ids=["per-step-outputs", "pooled"])
def test_a_model_taking_any_length_predicts_its_rows_in_calls_of_a_few_rows(which: int) -> None:
    """Inputs of shape (None, 4): the outputs' shapes come from the data's rows (20 steps), not
    from a placeholder of length 1 (which the pooled model cannot even take); a chunk goes to
    the model a few rows a call, with the same outputs as one call of all of them."""
    model = _variable_length_models()[which]
    x = np.random.default_rng(which).normal(size=(7, 20, 4)).astype(np.float32)
    served = serving.Served(model, 0)
    predictor = batch_predict.Predictor(served, 1.0, rows_per_call=3)  # 3 calls for 7 rows
    predictor.shaped_by([x[:1]])
    got = predictor.chunk([x], 0)
    expected = np.asarray(model(x, training=False))
    key = "values" if "values" in got.arrays else "logits"  # a classifier's head: its logits
    assert got.arrays[key].shape == expected.shape and got.bad == []
    np.testing.assert_allclose(got.arrays[key], expected, atol=1e-5)
    whole = batch_predict.Predictor(served, 1.0, rows_per_call=1000)
    whole.shaped_by([x[:1]])
    np.testing.assert_allclose(whole.chunk([x], 0).arrays[key], got.arrays[key], atol=1e-6)


def test_one_input_is_predicted_whatever_its_arrays_name(
    trained: tuple[Settings, int, str],
) -> None:
    """The model trained on mnist-sample's unnamed x; an upload naming its one input array
    ("x_train.pixels") is accepted and predicted the same (it was a 422)."""
    import io

    from shared.auth import issue_token
    from web import create_app

    settings, owner, model_job = trained
    with session_scope(settings.database_url) as s:
        user = s.get(User, owner)
        assert user is not None
        token = issue_token(s, user)
    x = load("mnist-sample").x_test[:50]
    buffer = io.BytesIO()
    np.savez(buffer, **{"x_train.pixels": x, "y_train": np.zeros(len(x), np.uint8)})
    client = create_app(settings).test_client()
    r = client.post("/api/v1/datasets", headers={"Authorization": f"Bearer {token}"},
                    data={"file": (io.BytesIO(buffer.getvalue()), "named.npz")},
                    content_type="multipart/form-data")  # fmt: skip
    assert r.status_code == 201, r.get_data(as_text=True)
    job_id = _submit(settings, owner, {"job_id": model_job, "dataset": {"id": r.json["id"]}})
    run_job(settings, job_id)
    with session_scope(settings.database_url) as s:
        job = s.get_one(Job, job_id)
        assert job.status == JobStatus.succeeded, job.error
        result = next(a for a in job.artifacts if a.format == service.RESULT)
        local = storage.artifacts(settings).local
        assert local is not None
        with np.load(local / result.path) as got:
            logits = got["logits"]
    np.testing.assert_allclose(logits, _served(settings, model_job, x)["logits"], atol=1e-5)
