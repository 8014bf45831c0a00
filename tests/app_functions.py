"""The app's indexed functions, read once (the SDK refuses a second
`get_functions()` on the same app, as the host reads it only once)."""
from functools import lru_cache

import function_app


@lru_cache(maxsize=1)
def indexed() -> dict:
    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def user_function(name: str):
    return indexed()[name].get_user_function()
