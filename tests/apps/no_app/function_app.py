import azure.functions as func  # noqa: F401

handler = None
