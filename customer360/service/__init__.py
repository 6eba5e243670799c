"""The real-time resolve service (``customer360 serve``): one record in, its resolved_id
out, in milliseconds, from the graph the batch run published — and every accepted record
handed to the next batch run through the inbox source, so both views converge.

The resolution logic (``graph``, ``mapping``, ``choice``, ``resolver``, ``inbox``) is plain
Python over Polars; ``app`` is the thin FastAPI layer and ``server`` runs it with uvicorn.
"""

# Read by ``customer360 serve``; defined here so the command can name it without
# importing the web stack.
API_KEY_ENV_VAR = "CUSTOMER360_API_KEY"
