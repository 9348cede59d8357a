"""The Monitor inside training frameworks: :mod:`learnmech.integrations.lightning`
(pytorch-lightning, extra ``learnmech[lightning]``) and
:mod:`learnmech.integrations.transformers` (the Hugging Face ``Trainer``, extra
``learnmech[transformers]``). Each holds a ``MonitorCallback`` whose ``.monitor`` is the
:class:`~learnmech.monitor.Monitor` it runs."""
