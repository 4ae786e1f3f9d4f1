"""The job queue: RQ jobs and batches, the outbox sweep, the worker process, the Redis connection
(or the embedded one) and the process's runtime.
"""
