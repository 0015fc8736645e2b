"""The task interface of the training driver (docs/contracts.md, "Task interface").

A task is built once per run from the config and owns what it needs across calls (its body
model, its loss settings, its evaluator), so nothing is hung on the Keras model and no module
keeps a cache. The driver calls, in this order: `build_model` (inside the distribution
strategy's scope), `train_dataset` per input pipeline, `eval_dataset`, then per step
`compute_loss`, and `evaluate` every train.eval_every steps.
"""
import abc


class Task(abc.ABC):
    """Subclass this; the methods without a body are required, the others are optional hooks."""

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def build_model(self):
        """A built keras.Model (its variables exist), called inside strategy.scope()."""

    @abc.abstractmethod
    def train_dataset(self, input_context=None):
        """Infinite, batched (per-replica size when input_context is given, sharded by it)."""

    @abc.abstractmethod
    def eval_dataset(self):
        """Finite, batched: what `evaluate` reads."""

    @abc.abstractmethod
    def compute_loss(self, model, inputs, targets, training):
        """(per-example loss (B,), {name: scalar batch mean}); L2 is added by the driver."""

    @abc.abstractmethod
    def evaluate(self, model, dataset):
        """{metric: float} of one pass over `dataset` (TensorBoard and WORKDIR/eval/)."""

    def train_size(self):
        """Training examples per epoch (to turn train.epochs into steps); None: unknown."""
        return None

    def regularized_weights(self, model):
        """The weights train's L2 applies to (default: none)."""
        return []

    def count_params(self, model):
        """Parameter counts printed by `--dry_run`."""
        return {"total": model.count_params()}

    def summarize(self, model, step, writer):
        """Extra TensorBoard content, called every train.log_every steps (default: none)."""
