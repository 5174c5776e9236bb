"""The smallest end-to-end job: write a three-node path to Neo4j and read it back.

`make demo` runs it until the real demo (`circuitmap demo`) lands; it proves the server, the
credentials and the driver work together. Its nodes carry their own label and are removed after.
"""

from __future__ import annotations

from db.connection import database_name, get_driver

_PATH = [("Dallas", "token"), ("Texas", "feature"), ("Austin", "logit")]
_WRITE = """
UNWIND range(0, size($names) - 2) AS i
MERGE (s:SmokeCheck {name: $names[i]}) SET s.kind = $kinds[i]
MERGE (t:SmokeCheck {name: $names[i + 1]}) SET t.kind = $kinds[i + 1]
MERGE (s)-[:ATTR {weight: 1.0}]->(t)
"""
_READ = """
MATCH p = (:SmokeCheck {name: $first})-[:ATTR*]->(:SmokeCheck {name: $last})
RETURN [n IN nodes(p) | n.name + ' (' + n.kind + ')'] AS path
"""


def main() -> None:
    names, kinds = [n for n, _ in _PATH], [k for _, k in _PATH]
    db = database_name()
    with get_driver() as driver:
        driver.execute_query(_WRITE, names=names, kinds=kinds, database_=db)
        records, _, _ = driver.execute_query(
            _READ, first=names[0], last=names[-1], database_=db, routing_="r"
        )
        driver.execute_query("MATCH (n:SmokeCheck) DETACH DELETE n", database_=db)
    path = records[0]["path"]
    assert [p.split(" ")[0] for p in path] == names, path
    print("wrote and read back:", " -> ".join(path))


if __name__ == "__main__":
    main()
