"""An example workspace plugin: append every move of a canonical head to .release/journal.log.

Any `*.py` file in a workspace's `plugins/` folder is loaded as a plugin named
`workspace.<file stem>`; block it with RELEASE_PIPELINE_BLOCK=workspace.promotion_journal.
"""

from pathlib import Path

from release_pipeline.plugins.hookspecs import hookimpl


@hookimpl
def release_promoted(move, workspace: Path):
    journal = workspace / ".release" / "journal.log"
    if journal.parent.is_dir():
        with journal.open("a", encoding="utf-8") as fh:
            origin = f"v{move.from_version}" if move.from_version else "-"
            fh.write(
                f"{move.at:%Y-%m-%d %H:%M:%S} {move.agent} {origin} -> v{move.to_version} "
                f"({move.kind}) by {move.actor}: {move.reason}\n"
            )
