"""The dashboard on an empty database: every page explains itself, none shows a traceback."""

from tests.app_fixtures import clear_app_caches, open_page, texts

PAGES = [
    "views/overview.py",
    "views/prompts.py",
    "views/graph.py",
    "views/feature.py",
    "views/workbench.py",
    "views/supernodes.py",
    "views/compare.py",
    "views/interventions.py",
]


def test_every_page_handles_an_empty_database(clean_db):
    clear_app_caches()
    for page in PAGES:
        at = open_page(page)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        if page != "views/workbench.py":  # the workbench works without graphs
            assert at.info, page
    assert "holds no graphs yet" in texts(open_page("views/overview.py"))
