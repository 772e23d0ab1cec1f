"""A local worker's environment: the base variables, what the operator names, never the secrets."""

from __future__ import annotations

from launcher.worker_env import WORKER_ENV_VARIABLE, parse_worker_env, worker_environment

SOURCE = {
    "PATH": "/usr/bin",
    "HOME": "/home/me",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "VIRTUAL_ENV": "/venv",
    "PARTITA_DATABASE_URL": "postgresql+psycopg://u:s3cret@db/partita",
    "PARTITA_DATABASE_URL_FILE": "/secrets/db",
    "PARTITA_TEST_OUTPUT": "/tmp/out",
    "AWS_SECRET_ACCESS_KEY": "xyz",
    "WAREHOUSE_URL": "https://warehouse",
}


def test_only_the_base_variables_pass_by_default() -> None:
    assert worker_environment(source=SOURCE) == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "VIRTUAL_ENV": "/venv",
    }


def test_named_variables_and_prefixes_pass_but_never_the_database_url() -> None:
    environment = worker_environment(("WAREHOUSE_URL", "PARTITA_*"), source=SOURCE)
    assert environment["WAREHOUSE_URL"] == "https://warehouse"
    assert environment["PARTITA_TEST_OUTPUT"] == "/tmp/out"
    assert "PARTITA_DATABASE_URL" not in environment
    assert "PARTITA_DATABASE_URL_FILE" not in environment
    assert "AWS_SECRET_ACCESS_KEY" not in environment


def test_the_variable_adds_names_and_the_launchers_settings_win() -> None:
    source = {**SOURCE, WORKER_ENV_VARIABLE: "WAREHOUSE_URL, AWS_*"}
    environment = worker_environment(source=source, settings={"PYTHONUNBUFFERED": "1", "PATH": "/bin"})
    assert environment["AWS_SECRET_ACCESS_KEY"] == "xyz"  # named by the operator: their decision
    assert environment["WAREHOUSE_URL"] == "https://warehouse"
    assert (environment["PYTHONUNBUFFERED"], environment["PATH"]) == ("1", "/bin")
    assert WORKER_ENV_VARIABLE not in environment
    assert parse_worker_env(" A,B  C,, ") == ("A", "B", "C")
