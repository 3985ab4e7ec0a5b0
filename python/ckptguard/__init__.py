"""ckptguard's Python companion: save checkpoints so a crash never leaves a half-written file,
save them without stopping training, and tell ``ckptguard run`` how training is going.

Standard library only; torch is imported by the functions that save. The command-line tool
(``npm install -g ckptguard``) judges checkpoints: ``verify=True`` and
:func:`latest_checkpoint` run it from PATH.

    from ckptguard import AsyncCheckpointWriter, Progress, atomic_save, latest_checkpoint

    resume = latest_checkpoint("ckpt/")               # newest valid checkpoint, or None
    progress = Progress()                              # a no-op outside `ckptguard run`
    with AsyncCheckpointWriter() as writer:
        for step in range(start, steps):
            ...
            progress.report(step=step, loss=loss.item())
            if step % 1000 == 0:
                writer.save({"model": model.state_dict(), "step": step}, f"ckpt/step_{step:07d}.pt")
"""
from ._async import AsyncCheckpointWriter
from ._atomic import atomic_save
from ._errors import CkptguardError
from ._latest import latest_checkpoint
from ._markers import is_done, mark_done, marker_path, read_marker
from ._progress import Progress
from ._snapshot import snapshot_to_cpu

__version__ = "0.1.0"

__all__ = [
    "AsyncCheckpointWriter",
    "CkptguardError",
    "Progress",
    "atomic_save",
    "is_done",
    "latest_checkpoint",
    "mark_done",
    "marker_path",
    "read_marker",
    "snapshot_to_cpu",
]
