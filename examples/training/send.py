"""Queue a training run, follow it, then use the saved model: ``python -m examples.training.send``.

Prints progress per fold and the accuracy; then loads the model file the worker wrote, as a
web process would, and classifies the ``--try`` sentences. Exits 0 on success.
"""

from __future__ import annotations

import argparse
import time

from examples.training.model import NaiveBayes
from examples.training.tasks import MODELS, app, train
from taskqueue_kit import TaskState, get_task_info


def main(argv: list[str] | None = None) -> int:
    """Train in the worker, report, and try the model on a few sentences."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="a label,text CSV in $TASKQUEUE_HOME/datasets")
    parser.add_argument("--model", default="reviews")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--try",
        dest="samples",
        nargs="*",
        default=["Works perfectly and arrived early.", "Broke after two days, avoid."],
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to follow")
    args = parser.parse_args(argv)

    result = train.delay(args.dataset, args.model, args.folds, seed=args.seed)
    print(f"queued {result.id}", flush=True)
    deadline = time.monotonic() + args.timeout
    last = None
    while time.monotonic() < deadline:
        info = get_task_info(result.id, app=app)
        step = info.progress.message if info.progress else info.state.value
        if step != last:
            last = step
            print(step, flush=True)
        if info.ready:
            break
        time.sleep(0.05)
    else:
        print(f"not finished after {args.timeout:g}s; is a worker running on queue 'training'?")
        return 1
    if info.state is not TaskState.SUCCEEDED:
        print(f"failed: {info.error.message if info.error else info.state.value}")
        return 1
    report = info.result
    folds = ", ".join(f"{score:.2f}" for score in report["cross_validation"])
    print(f"held-out accuracy {report['accuracy']:.3f} on {report['test_size']} examples")
    print(f"cross-validation: {folds}")
    model = NaiveBayes.load(MODELS / report["model"])
    for sample in args.samples:
        print(f"{model.predict(sample):>10}  {sample}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
