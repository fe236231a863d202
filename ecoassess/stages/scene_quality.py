"""Scene-quality stage: per scene and reflectance band, the share of observed cells outside the physical range of
surface reflectance (``indices/reflectance.yaml``; issue 18, item 5), as the table ``scene_quality``, the log
and the manifest's ``warnings``. Those observations are already masked by the readers
(:func:`ecoassess.sources.reflectance_range.screen_reflectance`); this stage says how many there were."""

from __future__ import annotations

import logging

import pandas as pd

from ecoassess.errors import EcoassessError
from ecoassess.stages.base import RunContext, Stage
from ecoassess.stages.common import formats

log = logging.getLogger(__name__)


class SceneQualityStage(Stage):
    """The ``scene_quality`` table of every configured scene (imagery and thermal products). The counts come from
    each scene's one eager pass, which the composites have usually made already. A product that cannot be opened
    is left out here: the stage that needs it reports it."""

    name = "scene quality"
    needs_imagery = "the reflectance screening of each scene (scene_quality)"

    def enabled(self, config) -> bool:
        return bool(config.imagery) or bool(config.thermal)

    def run(self, ctx: RunContext) -> None:
        from ecoassess.sources.reflectance_range import out_of_range_warnings, scene_quality_table

        config = ctx.config
        if not ctx.result.tables:  # no other stage completed: the run fails with their problems, not with this table
            return
        labelled = [(f"imagery.{y}", spec) for y, specs in config.imagery.items() for spec in specs]
        labelled += [(f"thermal.{y}", spec) for y, spec in config.thermal.items()]
        parts, seen = [], set()
        with ctx.timer.stage("scene quality"):
            for label, spec in labelled:
                try:
                    scene = ctx.inputs.scene(spec)
                except EcoassessError as exc:
                    log.info("scene quality: %s left out (%s)", label, exc)
                    continue
                if id(scene) in seen:  # a thermal product that is also imagery: one row set
                    continue
                seen.add(id(scene))
                parts.append(scene_quality_table([scene], label))
        if not parts:
            return
        table = pd.concat(parts, ignore_index=True)
        for note in out_of_range_warnings(table):
            log.warning(note)
            ctx.result.warnings.append(note)
        ctx.result.tables["scene_quality"] = table
        ctx.store.write_table("scene_quality", table, **formats(config))
