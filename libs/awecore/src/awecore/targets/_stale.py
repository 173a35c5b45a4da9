"""Judging what the plan found: the QC policy on a node's inputs, and the rule of
:mod:`awecore.staleness` (every input still the best, covering the node's moment, none to be
remade, nor the object itself), with who changed a window or verdict where the history
says."""

from __future__ import annotations

from ..model import CalFile, registry
from ..pipelines import SOFTWARE_VERSION
from ..records import ObjectOut
from ..staleness import (
    InputState,
    covers,
    input_reasons,
    input_set_changed,
    inputs_remade,
    moment,
    own_reasons,
)
from ._nodes import Node, calibrates, midnight
from ._policy import REFUSED, describe, refused_flags
from ._read import Reader
from ._recipes import RECIPES

__all__ = ["Judge"]


class Judge(Reader):

    async def _policy(self, node: Node) -> list[str]:
        """The QC policy (see _policy) on inputs known already: an input of a kind with
        flags the class refuses is left out (noted); a refused single input, or one whose
        own making is refused, refuses the node (the reasons)."""
        if self._nothing_to_refuse(node):  # (the planner asks this itself first)
            return []
        reasons = []
        for ref, keys in list(node.inputs.items()):
            many = isinstance(keys, list)
            kept = []
            for key in keys if isinstance(keys, list) else [keys]:
                dep = self._nodes[key]
                flags = refused_flags(node.cls, await self._object(dep.oid)) \
                    if dep.action == "use" and dep.oid else None
                if dep.action == "refuse" or flags:
                    why = f"its {ref} {dep.oid or dep.describe()} " + (
                        f"has {describe(flags)}, which {node.cls} refuses" if flags
                        else "is refused")
                    if many:
                        node.notes.append(f"left out: {why}")
                        continue
                    reasons.append(why)
                kept.append(key)
            if many:
                node.inputs[ref] = kept
                if not kept:
                    reasons.append(f"every one of its {ref} is refused by the QC policy")
        return reasons

    def _nothing_to_refuse(self, node: Node) -> bool:
        """Whether the QC policy surely finds nothing in a node's inputs (the common case,
        told without reading a record): no node of the plan is refused, none of its lists of
        inputs is empty, and, if its class refuses flags, every input is one to be made
        (only a product that exists has flags)."""
        if self._refusing:
            return False
        gated = node.cls in REFUSED
        nodes = self._nodes
        for keys in node.inputs.values():
            if isinstance(keys, list):
                if not keys or (gated and any(nodes[k].action != "make" for k in keys)):
                    return False
            elif gated and nodes[keys].action != "make":
                return False
        return True

    async def _why_stale(self, obj: ObjectOut, node: Node) -> list[str]:
        """The rule of :mod:`awecore.staleness` on what the plan found: each input must
        still be what the plan would use, cover the node's moment, none must be remade,
        nor the object itself."""
        reasons = []
        for ref, keys in node.inputs.items():
            used = obj.refs.get(ref)
            if isinstance(keys, list):
                deps = [self._nodes[k] for k in keys]
                remade = [d for d in deps if d.action == "make"]
                if remade:
                    reasons.append(inputs_remade(ref, len(remade), remade[0].reasons[0]))
                elif sorted(used if isinstance(used, list) else []) != sorted(
                        str(d.oid) for d in deps):
                    reasons.append(input_set_changed(ref, products=True))
                continue
            dep = self._nodes[keys]
            if dep.action == "refuse":
                continue  # the QC policy has refused the node already
            if used == dep.oid and dep.action == "use":
                continue
            was = await self._used(used)
            invalidated = was is not None and was.is_valid == 0
            uncovered = (was is not None and not invalidated and node.time is not None
                         and calibrates(was.type)
                         and not covers(was.timestamp_start, was.timestamp_end, node.time))
            change = None
            if was is not None and (invalidated or uncovered):
                change = await self.curation(was, node.time if uncovered else None)
            state = InputState(ref, str(used), invalidated=invalidated, change=change,
                               uncovered=moment(node.time) if uncovered and node.time
                               else None)
            if dep.action == "make" and uncovered:  # what covers it now is to be made
                state = InputState(ref, str(used), uncovered=state.uncovered, change=change,
                                   best=f"a {dep.cls} to be made from {dep.night}")
            elif dep.action == "make":  # what it would be made from now is to be made
                state = InputState(ref, str(used), invalidated=invalidated, change=change,
                                   stale=dep.reasons[0])
            else:
                state = InputState(ref, str(used), invalidated=invalidated, change=change,
                                   uncovered=state.uncovered, best=dep.oid)
            reasons += input_reasons(state)
        for ref, found in node.raws.items():
            used = obj.refs.get(ref)
            if isinstance(found, str):
                reasons += input_reasons(InputState(ref, str(used), best=found))
            elif sorted(used if isinstance(used, list) else [str(used)]) != found:
                reasons.append(input_set_changed(ref, products=False))
        calibration = issubclass(registry.get(obj.type), CalFile)
        return reasons + own_reasons(obj.type, obj.software_version, SOFTWARE_VERSION,
                                     invalidated=calibration and obj.is_valid != 1,
                                     made_with=obj.process_params, asked=node.params)

    async def window_reasons(self, record: ObjectOut) -> list[str]:
        """The calibrations an object was made with that no longer cover its moment (or
        were invalidated), and who changed them: what :func:`uptodate` says when no plan
        can be drawn for it any more."""
        recipe = RECIPES.get(record.type)
        if recipe is None:
            return []
        if recipe.raw_path is not None:
            raw = (await self._follow([record], recipe.raw_path))[0]
            when = await self._observed(raw) if raw else None
        else:
            when = midnight(await self.made_night(record))
        reasons = []
        for inp in recipe.inputs:
            was = await self._used(record.refs.get(inp.ref))
            if was is None or not calibrates(was.type) or when is None:
                continue
            invalidated = was.is_valid == 0
            if not invalidated and covers(was.timestamp_start, was.timestamp_end, when):
                continue
            change = await self.curation(was, None if invalidated else when)
            reasons += input_reasons(InputState(
                inp.ref, was.oid, invalidated=invalidated, change=change,
                uncovered=None if invalidated else moment(when)))
        return reasons
