"""Larger generated instances for benchmarks: the sample network copied ``k`` times.

Every plant is copied ``k`` times (``US-ASSY#2`` …) with its lines, hours and starting stock;
each lane is copied within every copy and also to the next copy round-robin (one month slower),
so the copies share components; demand is multiplied by ``k``. Items, nations and transfer
rules are unchanged. The result has about ``k`` times the columns, rows and integers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kizuna.industry.data import IndustryData


def scale_data(d: IndustryData, k: int) -> IndustryData:
    if k < 1:
        raise ValueError("k must be at least 1")
    if k == 1:
        return d
    P = len(d.plants)
    copies = np.arange(k)

    def tile_plant(index: np.ndarray) -> np.ndarray:
        return (index[None, :] + P * copies[:, None]).ravel()

    def tile(values: np.ndarray) -> np.ndarray:
        return np.tile(values, k)

    # lanes: same copy, plus to the next copy for plant-to-plant lanes
    same_origin = tile_plant(d.lane_origin)
    same_dest = np.where(
        np.tile(d.lane_to_plant, k), tile_plant(d.lane_destination), np.tile(d.lane_destination, k)
    )
    cross = np.tile(d.lane_to_plant, k)
    next_copy = (copies[:, None] + 1) % k
    cross_dest = (d.lane_destination[None, :] + P * next_copy).ravel()
    return dataclasses.replace(
        d,
        folder=f"{d.folder} x{k}",
        plants=[f"{p}#{c}" if c else p for c in range(k) for p in d.plants],
        plant_names=[n for _ in range(k) for n in d.plant_names],
        plant_nation=tile(d.plant_nation),
        plant_hours=tile(d.plant_hours),
        item_single_source=np.zeros_like(d.item_single_source),
        line_plant=tile_plant(d.line_plant),
        line_item=tile(d.line_item),
        line_rate=tile(d.line_rate),
        line_existing=tile(d.line_existing),
        line_max=tile(d.line_max),
        line_unit_cost=tile(d.line_unit_cost),
        line_capex=tile(d.line_capex),
        line_lead=tile(d.line_lead),
        line_ramp=tile(d.line_ramp),
        line_hours=tile(d.line_hours),
        lane_origin=np.concatenate([same_origin, same_origin[cross]]),
        lane_to_plant=np.concatenate([np.tile(d.lane_to_plant, k), np.ones(cross.sum(), bool)]),
        lane_destination=np.concatenate([same_dest, cross_dest[cross]]),
        lane_transit=np.concatenate([tile(d.lane_transit), tile(d.lane_transit)[cross] + 1]),
        lane_cost=np.concatenate([tile(d.lane_cost), tile(d.lane_cost)[cross]]),
        inventory_plant=tile_plant(d.inventory_plant),
        inventory_item=tile(d.inventory_item),
        inventory_quantity=tile(d.inventory_quantity),
        demand_quantity=d.demand_quantity * k,
    )
