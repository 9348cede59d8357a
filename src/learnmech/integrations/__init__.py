"""The Monitor inside training frameworks: :mod:`learnmech.integrations.lightning`
(pytorch-lightning, extra ``learnmech[lightning]``) and
:mod:`learnmech.integrations.transformers` (the Hugging Face ``Trainer``, extra
``learnmech[transformers]``). Each holds a ``MonitorCallback`` whose ``.monitor`` is the
:class:`~learnmech.monitor.Monitor` it runs."""

# nothing to star-import: each submodule needs its extra and is imported by name
__all__: list[str] = []
