"""Real PostgreSQL and Redis servers the sandbox applies credential changes to.
(Placeholder: filled in with the Key Vault / Redis / PostgreSQL APIs.)"""


def start_all(state, world):
    return []
