"""The engines that run a job's shards: ``local`` (one process, decoding in ``DataLoader``
workers) and ``ray`` (Ray Data, an actor pool of workers). Both write the same store by the
same rules (``attrib.runs.store``)."""
