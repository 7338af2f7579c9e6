"""Road networks for evacuation routing: one walkable graph from any road source.

:func:`read_roads` turns any of the road sources below into an undirected, osmnx-style
:class:`networkx.MultiGraph` in a metric CRS (graph attribute ``crs``; node attributes
``x``, ``y``; edge attributes ``length`` (m), ``geometry`` (LineString from ``u`` to
``v``), ``highway``, ``name``). :func:`gridmap.plan_evacuation` accepts the same
sources and converts them straight into arrays (no networkx round trip).

Sources
-------
* a networkx graph (``Graph``, ``MultiGraph``, ``MultiDiGraph``; osmnx graphs as they
  come): node attributes ``x``/``y`` in the CRS of ``graph.graph["crs"]``, edge
  attribute ``length`` in metres (computed from the geometry when missing). Directions
  are ignored (people on foot do not follow one-way rules).
* a GraphML file (``.graphml``), read with :func:`osmnx.load_graphml`.
* an OpenStreetMap extract (``.pbf``), read offline with pyrosm
  (``OSM(path).get_network(network_type, nodes=True)``).
* a line layer (GeoDataFrame or any file GDAL reads; a GeoPackage with several layers
  must hold one named ``roads``). Lines are usually **not split at junctions**: they are
  noded here (see below).
* :func:`roads_from_osm` downloads a network with osmnx (needs the internet).

Noding a line layer
-------------------
1. Lines are projected to the metric CRS and MultiLineStrings exploded.
2. Line ends closer than ``snap_tolerance`` (default 1 m) to each other are merged into
   their mean point (single-linkage clusters).
3. A dangling line end (one that touches no other line) lying within
   ``snap_tolerance`` of another line is joined to it by a short connector (undershoot
   repair: the digitiser stopped just short of the crossing street).
4. All lines are noded together with :func:`shapely.node`: every crossing becomes a
   junction, so a bridge drawn across a street without a ``layer`` tag is joined to it;
   this is the usual choice for centre lines without level information.
5. Every noded piece becomes an edge between its end points; pieces keep the
   attributes (``highway``/``TYPE``, ``name``/``NAME``) of the source line they lie on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.spatial import cKDTree

from .crs import metric_crs, require_crs
from .errors import CRSError, GeometryError, InputError, SchemaError

__all__ = [
    "ROAD_WIDTH_M",
    "SNAP_TOLERANCE_M",
    "RoadNetwork",
    "edge_width",
    "read_roads",
    "road_network",
    "roads_from_osm",
]

#: Default distance (m) within which line ends are merged or joined to a nearby line.
SNAP_TOLERANCE_M = 1.0

#: Rough walkable width (m) of a road by OSM ``highway`` class, used for the pedestrian
#: flow capacity in the congestion allowance of :func:`gridmap.plan_evacuation`. In an
#: evacuation people walk on the carriageway too; these are conservative effective
#: widths, not design widths. Unknown classes take ``"default"``.
ROAD_WIDTH_M: dict[str, float] = {
    "motorway": 10.0,
    "trunk": 10.0,
    "primary": 10.0,
    "secondary": 8.0,
    "tertiary": 6.0,
    "unclassified": 5.0,
    "residential": 5.0,
    "living_street": 4.0,
    "service": 4.0,
    "pedestrian": 6.0,
    "track": 3.0,
    "footway": 2.5,
    "path": 2.0,
    "steps": 2.0,
    "cycleway": 2.5,
    "default": 4.0,
}

_PBF_TYPES = {"walk": "walking", "drive": "driving", "bike": "cycling", "all": "all"}
_HIGHWAY_COLUMNS = ("highway", "HIGHWAY", "TYPE", "type", "fclass", "class", "道路等级")
_NAME_COLUMNS = ("name", "NAME", "名称", "路名")


@dataclass
class RoadNetwork:
    """A road network as arrays (metric CRS), the form routing works on.

    Edges are undirected; ``geometry[i]`` runs from node ``u[i]`` to node ``v[i]``.
    Built by :func:`road_network`.

    Attributes
    ----------
    crs : pyproj.CRS
        Metric CRS of the coordinates.
    x, y : numpy.ndarray
        Node coordinates.
    u, v : numpy.ndarray
        End nodes of each edge.
    length : numpy.ndarray
        Edge lengths (m).
    geometry : numpy.ndarray
        Edge lines (shapely), from ``u`` to ``v``.
    highway, name : numpy.ndarray
        Road class and name of each edge (None when unknown).
    source : str
        Where the network came from (for messages).
    node_id : numpy.ndarray or None
        Node ids of the source graph, when it had some.
    """

    crs: CRS
    x: np.ndarray
    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    geometry: np.ndarray
    highway: np.ndarray
    name: np.ndarray
    source: str
    node_id: np.ndarray | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.x)

    @property
    def n_edges(self) -> int:
        return len(self.u)

    def edges_frame(self, idx: np.ndarray | None = None) -> gpd.GeoDataFrame:
        """Edges (all, or those at `idx`) as a GeoDataFrame in the metric CRS."""
        idx = np.arange(self.n_edges) if idx is None else np.asarray(idx, dtype=np.int64)
        return gpd.GeoDataFrame(
            {
                "edge": idx,
                "u": self.u[idx],
                "v": self.v[idx],
                "highway": self.highway[idx],
                "name": self.name[idx],
                "length_m": np.round(self.length[idx], 2),
            },
            geometry=self.geometry[idx],
            crs=self.crs,
        )

    def components(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Connected-component label of every node (over the edges in `mask`)."""
        keep = np.ones(self.n_edges, bool) if mask is None else mask
        n = self.n_nodes
        adj = sparse.coo_matrix(
            (np.ones(int(keep.sum())), (self.u[keep], self.v[keep])), shape=(n, n)
        )
        return sparse.csgraph.connected_components(adj, directed=False)[1]


# --------------------------------------------------------------------------- public


def read_roads(
    roads: Any,
    *,
    crs: Any = None,
    network_type: str = "walking",
    snap_tolerance: float = SNAP_TOLERANCE_M,
) -> nx.MultiGraph:
    """Build an undirected, routable road graph from any road source.

    Parameters
    ----------
    roads : networkx graph, path or geopandas.GeoDataFrame
        A networkx/osmnx graph, a GraphML file, an OSM ``.pbf`` extract, or a line layer
        (GeoDataFrame or file); see the module documentation.
    crs : optional
        Metric CRS of the result; by default the graph's own CRS when it is projected in
        metres, else the local UTM zone.
    network_type : str
        For ``.pbf`` input: pyrosm network type (``"walking"``, ``"driving"``,
        ``"cycling"``, ``"all"``; osmnx spellings ``"walk"``/``"drive"`` are accepted).
    snap_tolerance : float
        For line layers: distance (m) within which line ends are merged or joined to a
        nearby line before noding.

    Returns
    -------
    networkx.MultiGraph
        Nodes ``0..n-1`` with ``x``, ``y`` (and ``osmid`` when the source had ids);
        edges with ``length`` (m), ``geometry``, ``highway``, ``name``;
        ``graph["crs"]`` is the metric CRS.
    """
    net = road_network(roads, crs=crs, network_type=network_type, snap_tolerance=snap_tolerance)
    return _to_networkx(net)


def roads_from_osm(place: str | dict, *, network_type: str = "walk") -> nx.MultiDiGraph:
    """Download a road network for `place` from OpenStreetMap with osmnx (online).

    Parameters
    ----------
    place : str or dict
        A place name or query that Nominatim geocodes to a polygon, e.g.
        ``"Yimei District, Yichun, Heilongjiang, China"``.
    network_type : str
        osmnx network type (``"walk"``, ``"drive"``, ``"all"``, ...).

    Returns
    -------
    networkx.MultiDiGraph
        The osmnx graph (EPSG:4326), usable as ``roads`` in
        :func:`gridmap.plan_evacuation`.
    """
    import osmnx as ox

    try:
        return ox.graph_from_place(place, network_type=network_type)
    except Exception as exc:  # osmnx raises many types (network, geocoding)
        raise InputError(f"cannot download the road network: {exc}", source=str(place)) from exc


# --------------------------------------------------------------------------- sources


def road_network(
    roads: Any,
    *,
    crs: Any = None,
    default_crs: Any = None,
    network_type: str = "walking",
    snap_tolerance: float = SNAP_TOLERANCE_M,
) -> RoadNetwork:
    """Build the array form of a road network (what routing works on) from any source.

    Parameters
    ----------
    roads : networkx graph, path, geopandas.GeoDataFrame or RoadNetwork
        As in :func:`read_roads`; a :class:`RoadNetwork` is returned as it is.
    crs : optional
        Metric CRS of the result (default: as in :func:`read_roads`).
    default_crs : optional
        CRS assumed for a networkx graph without a ``crs`` graph attribute.
    network_type, snap_tolerance
        As in :func:`read_roads`.

    Returns
    -------
    RoadNetwork

    Raises
    ------
    InputError, CRSError, SchemaError, GeometryError
        Unreadable or unusable road data (the message names the file or layer).
    """
    if isinstance(roads, RoadNetwork):
        if crs is not None and CRS.from_user_input(crs) != roads.crs:
            raise CRSError("road network is in another CRS", source=roads.source)
        return roads
    if isinstance(roads, nx.Graph):
        return _from_graph(roads, crs, default_crs, "roads graph")
    if isinstance(roads, gpd.GeoSeries):
        roads = gpd.GeoDataFrame(geometry=roads)
    if isinstance(roads, gpd.GeoDataFrame):
        name = str(roads.attrs.get("name", "")) or "roads"
        return _from_lines(roads, crs, snap_tolerance, name)
    if not isinstance(roads, str | os.PathLike):
        raise InputError(
            "roads must be a networkx graph, a GeoDataFrame of lines, or a path "
            f"(.graphml, .pbf, or a line layer), got {type(roads).__name__}",
            source="roads",
        )
    path = Path(roads)
    if not path.exists():
        raise InputError("file not found", source=str(path), where="roads")
    suffix = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".graphml":
        import osmnx as ox

        try:
            graph = ox.load_graphml(path)
        except Exception as exc:  # osmnx/networkx raise several types
            raise InputError(f"cannot read GraphML: {exc}", source=str(path)) from exc
        return _from_graph(graph, crs, default_crs, str(path))
    if path.suffix.lower() == ".pbf" or suffix == ".osm.pbf":
        return _from_pbf(path, crs, network_type)
    return _from_lines(_read_lines(path), crs, snap_tolerance, str(path))


def _read_lines(path: Path) -> gpd.GeoDataFrame:
    import pyogrio

    from .load import read_layer

    try:
        layers = [str(x) for x in pyogrio.list_layers(path)[:, 0]]
    except Exception as exc:  # pyogrio raises several types
        raise InputError(f"cannot read roads: {exc}", source=str(path)) from exc
    layer = None
    if len(layers) > 1:
        if "roads" not in layers:
            raise InputError(
                f"the file has several layers ({', '.join(layers)}) and none is named "
                "'roads'; pass the road layer as a GeoDataFrame",
                source=str(path),
            )
        layer = "roads"
    gdf = read_layer(path, layer=layer, geom_types="line")
    gdf.attrs["name"] = str(path)
    return gdf


def _first(value: Any) -> Any:
    """First element of an osmnx list attribute (``highway=['residential', ...]``)."""
    if isinstance(value, list | tuple):
        return value[0] if value else None
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _target_crs(crs: Any, source_crs: CRS, x: np.ndarray, y: np.ndarray, name: str) -> CRS:
    if crs is not None:
        return CRS.from_user_input(crs)
    if source_crs.is_projected and all(
        a.unit_name in ("metre", "meter") for a in source_crs.axis_info
    ):
        return source_crs
    if len(x) == 0:
        raise CRSError("cannot choose a metric CRS for an empty network", source=name)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=source_crs)
    return metric_crs(pts, name)


def _from_graph(graph: nx.Graph, crs: Any, default_crs: Any, name: str) -> RoadNetwork:
    gcrs = graph.graph.get("crs", default_crs)
    if gcrs is None:
        raise CRSError(
            "road graph has no 'crs' graph attribute; set graph.graph['crs']", source=name
        )
    gcrs = CRS.from_user_input(gcrs)
    nodes = list(graph.nodes)
    if not nodes:
        raise InputError("road graph has no nodes", source=name)
    xs = nx.get_node_attributes(graph, "x")
    ys = nx.get_node_attributes(graph, "y")
    if len(xs) < len(nodes) or len(ys) < len(nodes):
        missing = next(n for n in nodes if n not in xs or n not in ys)
        raise SchemaError(
            "every node needs 'x' and 'y' attributes", source=name, where=f"node {missing}"
        )
    x = np.array([xs[n] for n in nodes], dtype=float)
    y = np.array([ys[n] for n in nodes], dtype=float)
    edges = list(graph.edges(data=True))
    index = pd.Index(nodes)
    u = index.get_indexer([e[0] for e in edges])
    v = index.get_indexer([e[1] for e in edges])
    data = [e[2] for e in edges]
    length = np.array([d.get("length", np.nan) for d in data], dtype=float)
    geoms = np.array([d.get("geometry") for d in data], dtype=object)
    highway = np.array([_first(d.get("highway")) for d in data], dtype=object)
    names = np.array([_first(d.get("name")) for d in data], dtype=object)
    return _from_arrays(
        np.asarray(nodes, dtype=object), x, y, gcrs, u, v, length, geoms, highway, names, crs, name
    )


def _from_pbf(path: Path, crs: Any, network_type: str) -> RoadNetwork:
    from pyrosm import OSM

    ntype = _PBF_TYPES.get(network_type, network_type)
    try:
        nodes, edges = OSM(str(path)).get_network(network_type=ntype, nodes=True)
    except Exception as exc:  # pyrosm raises several types
        raise InputError(f"cannot read the {ntype} network: {exc}", source=str(path)) from exc
    if edges is None or len(edges) == 0:
        raise InputError(f"no {ntype} roads in the extract", source=str(path))
    ids = nodes["id"].to_numpy()
    index = pd.Index(ids)
    u = index.get_indexer(edges["u"].to_numpy())
    v = index.get_indexer(edges["v"].to_numpy())
    keep = (u >= 0) & (v >= 0)
    edges = edges[keep]
    u, v = u[keep], v[keep]
    col = next((c for c in _NAME_COLUMNS if c in edges.columns), None)
    names = edges[col].to_numpy(dtype=object) if col else np.full(len(edges), None, object)
    return _from_arrays(
        ids.astype(object),
        nodes["lon"].to_numpy(dtype=float),
        nodes["lat"].to_numpy(dtype=float),
        CRS.from_user_input(edges.crs or 4326),
        u,
        v,
        edges["length"].to_numpy(dtype=float) if "length" in edges else np.full(len(u), np.nan),
        edges.geometry.to_numpy(),
        edges["highway"].to_numpy(dtype=object) if "highway" in edges else None,
        names,
        crs,
        str(path),
    )


def _from_arrays(
    node_id: np.ndarray | None,
    x: np.ndarray,
    y: np.ndarray,
    source_crs: CRS,
    u: np.ndarray,
    v: np.ndarray,
    length: np.ndarray,
    geoms: np.ndarray,
    highway: np.ndarray | None,
    names: np.ndarray | None,
    crs: Any,
    name: str,
) -> RoadNetwork:
    """Project nodes and edges, fill missing geometries and lengths, drop self-loops."""
    target = _target_crs(crs, source_crs, x, y, name)
    if target != source_crs:
        tr = Transformer.from_crs(source_crs, target, always_xy=True)
        x, y = tr.transform(x, y)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        has = ~shapely.is_missing(geoms)
        if has.any():
            geoms = geoms.copy()
            geoms[has] = shapely.transform(
                geoms[has], lambda xy: np.column_stack(tr.transform(xy[:, 0], xy[:, 1]))
            )
    u = np.asarray(u, dtype=np.int64)
    v = np.asarray(v, dtype=np.int64)
    n = len(u)
    highway = np.full(n, None, object) if highway is None else np.asarray(highway, dtype=object)
    names = np.full(n, None, object) if names is None else np.asarray(names, dtype=object)
    keep = (u >= 0) & (v >= 0) & (u != v)
    u, v, length, geoms = u[keep], v[keep], np.asarray(length, float)[keep], geoms[keep]
    highway, names = highway[keep], names[keep]
    geoms = np.asarray(geoms, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        geoms = geoms.copy()
        k = np.flatnonzero(missing)
        coords = np.stack([np.c_[x[u[k]], y[u[k]]], np.c_[x[v[k]], y[v[k]]]], axis=1)
        geoms[k] = shapely.linestrings(coords)
    geoms = _orient(geoms, x[u], y[u], x[v], y[v])
    bad = ~np.isfinite(length) | (length <= 0)
    length = np.where(bad, shapely.length(geoms), length)
    return RoadNetwork(
        crs=target,
        x=x,
        y=y,
        u=u,
        v=v,
        length=length.astype(float),
        geometry=geoms,
        highway=highway,
        name=names,
        source=name,
        node_id=node_id,
    )


def _orient(
    geoms: np.ndarray, ux: np.ndarray, uy: np.ndarray, vx: np.ndarray, vy: np.ndarray
) -> np.ndarray:
    """Reverse the edge lines that run from ``v`` to ``u``."""
    start = shapely.get_coordinates(shapely.get_point(geoms, 0))
    if len(start) != len(geoms):
        return geoms
    d_u = np.hypot(start[:, 0] - ux, start[:, 1] - uy)
    d_v = np.hypot(start[:, 0] - vx, start[:, 1] - vy)
    flip = d_v < d_u
    if flip.any():
        geoms = geoms.copy()
        geoms[flip] = shapely.reverse(geoms[flip])
    return geoms


# --------------------------------------------------------------------------- noding


def _from_lines(gdf: gpd.GeoDataFrame, crs: Any, tolerance: float, name: str) -> RoadNetwork:
    """Node a line layer at every crossing and build the edge arrays."""
    require_crs(gdf, name)
    if tolerance < 0:
        raise InputError(f"snap_tolerance must be >= 0, got {tolerance}", source="snap_tolerance")
    target = CRS.from_user_input(crs) if crs is not None else metric_crs(gdf, name)
    gdf = gdf.to_crs(target) if CRS.from_user_input(gdf.crs) != target else gdf
    geoms = gdf.geometry.to_numpy()
    parts, src = shapely.get_parts(geoms, return_index=True)
    line = np.isin(shapely.get_type_id(parts), [1, 2])  # LineString, LinearRing
    parts, src = parts[line], src[line]
    ok = ~shapely.is_empty(parts) & (shapely.length(parts) > 0)
    parts, src = parts[ok], src[ok]
    if len(parts) == 0:
        raise GeometryError("no line geometries in the road layer", source=name)
    parts = shapely.force_2d(parts)
    if tolerance > 0:
        parts = _merge_ends(parts, tolerance)
        ok = shapely.length(parts) > 0
        parts, src = parts[ok], src[ok]
        connectors = _connectors(parts, tolerance)
    else:
        connectors = np.empty(0, dtype=object)
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(np.r_[parts, connectors])))
    noded = noded[shapely.length(noded) > 0]
    # attributes of the source line each noded piece lies on: the line of the nearest
    # source segment to the piece's midpoint (a tree of short segments has small boxes;
    # one of whole streets would not)
    mid = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    coords, cidx = shapely.get_coordinates(parts, return_index=True)
    a = np.flatnonzero(cidx[:-1] == cidx[1:])
    segments = shapely.linestrings(np.stack([coords[a], coords[a + 1]], axis=1))
    nearest = shapely.STRtree(segments).query_nearest(mid, all_matches=False)
    owner = np.empty(len(noded), dtype=np.int64)
    owner[nearest[0]] = src[cidx[a]][nearest[1]]
    hcol = next((c for c in _HIGHWAY_COLUMNS if c in gdf.columns), None)
    ncol = next((c for c in _NAME_COLUMNS if c in gdf.columns), None)
    highway = _attr(gdf, hcol, owner)
    names = _attr(gdf, ncol, owner)
    # nodes: the end points of the pieces (noding gives shared points exact coordinates)
    start = shapely.get_coordinates(shapely.get_point(noded, 0))
    end = shapely.get_coordinates(shapely.get_point(noded, -1))
    ends = np.round(np.vstack([start, end]), 6)
    xy, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    m = len(noded)
    return _from_arrays(
        None,
        xy[:, 0],
        xy[:, 1],
        target,
        inverse[:m],
        inverse[m:],
        shapely.length(noded),
        noded,
        highway,
        names,
        target,
        name,
    )


def _attr(gdf: gpd.GeoDataFrame, col: str | None, owner: np.ndarray) -> np.ndarray:
    if col is None:
        return np.full(len(owner), None, dtype=object)
    values = gdf[col].astype(object).where(gdf[col].notna(), None).to_numpy(dtype=object)
    return values[owner]


def _merge_ends(lines: np.ndarray, tolerance: float) -> np.ndarray:
    """Move line ends closer than `tolerance` to each other onto their mean point."""
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    count = np.bincount(idx, minlength=len(lines))
    first = np.cumsum(count) - count
    ends = np.r_[first, first + count - 1]
    pts = coords[ends]
    pairs = cKDTree(pts).query_pairs(tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return lines
    n = len(pts)
    adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = sparse.csgraph.connected_components(adj, directed=False)
    size = np.bincount(label)
    cx = np.bincount(label, weights=pts[:, 0]) / size
    cy = np.bincount(label, weights=pts[:, 1]) / size
    coords = coords.copy()
    coords[ends, 0], coords[ends, 1] = cx[label], cy[label]
    return shapely.linestrings(coords, indices=idx)


def _connectors(lines: np.ndarray, tolerance: float) -> np.ndarray:
    """Short lines joining dangling line ends to the nearest other line within reach."""
    n = len(lines)
    pts = np.r_[shapely.get_point(lines, 0), shapely.get_point(lines, -1)]
    owner = np.r_[np.arange(n), np.arange(n)]
    tree = shapely.STRtree(lines)
    p, q = tree.query(pts, predicate="dwithin", distance=tolerance)
    other = q != owner[p]
    p, q = p[other], q[other]
    if len(p) == 0:
        return np.empty(0, dtype=object)
    d = shapely.distance(pts[p], lines[q])
    touching = np.zeros(len(pts), dtype=bool)
    touching[p[d <= 1e-9]] = True
    near = ~touching[p]
    p, q, d = p[near], q[near], d[near]
    if len(p) == 0:
        return np.empty(0, dtype=object)
    order = np.lexsort((d, p))
    p, q = p[order], q[order]
    first = np.r_[True, p[1:] != p[:-1]]
    return shapely.shortest_line(pts[p[first]], lines[q[first]])


# --------------------------------------------------------------------------- networkx


def _to_networkx(net: RoadNetwork) -> nx.MultiGraph:
    graph = nx.MultiGraph(crs=net.crs)
    ids = net.node_id
    graph.add_nodes_from(
        (
            i,
            {"x": float(net.x[i]), "y": float(net.y[i])}
            | ({"osmid": ids[i]} if ids is not None else {}),
        )
        for i in range(net.n_nodes)
    )
    graph.add_edges_from(
        (
            int(net.u[i]),
            int(net.v[i]),
            {
                "length": float(net.length[i]),
                "geometry": net.geometry[i],
                "highway": net.highway[i],
                "name": net.name[i],
            },
        )
        for i in range(net.n_edges)
    )
    return graph


def edge_width(highway: np.ndarray) -> np.ndarray:
    """Walkable width (m) of each edge from its ``highway`` class (:data:`ROAD_WIDTH_M`)."""
    values = pd.Series(highway, dtype=object).map(ROAD_WIDTH_M)
    return values.fillna(ROAD_WIDTH_M["default"]).to_numpy(dtype=float)
