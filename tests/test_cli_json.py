"""`-o json` documents are written in pieces (reconciler.cli.echo_json), and the text is
exactly what json.dumps with an indent of 2 gives, with a newline."""

from __future__ import annotations

import json

from reconciler import cli


def test_a_large_document_is_written_in_pieces_as_json_dumps_gives_it(capsys, monkeypatch):
    writes: list[str] = []
    echo = cli.click.echo
    monkeypatch.setattr(cli.click, "echo", lambda text, nl=True: writes.append(text) or echo(text, nl=nl))
    document = {"actions": [{"op": "create", "name": f"c{n}/hosts", "changes": [{"field": "content", "to": n}],
                             "reason": "snowman \u2603 and a \"quote\"", "none": None, "yes": True}
                            for n in range(3000)], "summary": {"create": 3000}}
    cli.echo_json(document)
    assert capsys.readouterr().out == json.dumps(document, indent=2) + "\n"
    assert len(writes) > 2 and all(len(piece) < 1_000_000 for piece in writes)

