//! Composing components as `wac` does: the example HTTP service with the session component
//! plugged into its `agentmem:session/session` import (or with the encryption middleware in
//! between), by `wac plug` semantics or from a `.wac` document.

use anyhow::Context as _;
use indexmap::IndexMap;
use wac_graph::types::{BorrowedPackageKey, Package};
use wac_graph::{CompositionGraph, EncodeOptions};

/// `wac plug <socket> --plug <plug>`: instantiates `socket` with every import `plug`'s exports
/// satisfy, exports what `socket` exports, and leaves the rest of the imports to the host.
pub fn plug(socket: &[u8], plug: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let socket = Package::from_bytes("composed:socket", None, socket.to_vec(), graph.types_mut())
        .context("reading the socket component")?;
    let socket = graph.register_package(socket)?;
    let plug = Package::from_bytes("composed:plug", None, plug.to_vec(), graph.types_mut())
        .context("reading the plug component")?;
    let plug = graph.register_package(plug)?;
    wac_graph::plug(&mut graph, vec![plug], socket)?;
    Ok(graph.encode(EncodeOptions::default())?)
}

/// A chain of plugs, outermost first: `chain(&[service, middleware, session])` is
/// `wac plug service --plug (wac plug middleware --plug session)`, each component's imports
/// satisfied by the exports of the one after it.
pub fn chain(components: &[&[u8]]) -> anyhow::Result<Vec<u8>> {
    let Some((innermost, outer)) = components.split_last() else {
        anyhow::bail!("nothing to compose");
    };
    let mut composed = innermost.to_vec();
    for (depth, socket) in outer.iter().enumerate().rev() {
        composed = plug(socket, &composed)
            .with_context(|| format!("plugging into component {depth} of the chain"))?;
    }
    Ok(composed)
}

/// `wac compose <document> --dep name=path…`: resolves a `.wac` document against the named
/// packages (`("agentmem:session", bytes)`, …) and encodes the composition.
pub fn compose(document: &str, packages: &[(&str, &[u8])]) -> anyhow::Result<Vec<u8>> {
    let document =
        wac_parser::Document::parse(document).map_err(|e| anyhow::anyhow!("parsing: {e}"))?;
    let mut map = IndexMap::new();
    for (name, bytes) in packages {
        map.insert(
            BorrowedPackageKey::from_name_and_version(name, None),
            bytes.to_vec(),
        );
    }
    let resolution = document
        .resolve(map)
        .map_err(|e| anyhow::anyhow!("resolving: {e}"))?;
    Ok(resolution.encode(EncodeOptions::default())?)
}

/// The import names of a component (`wasi:http/types@0.2.x`, …), in the order it declares them.
pub fn imports(component: &[u8]) -> anyhow::Result<Vec<String>> {
    world_names(component, |w| w.imports.keys().cloned().collect())
}

/// The export names of a component.
pub fn exports(component: &[u8]) -> anyhow::Result<Vec<String>> {
    world_names(component, |w| w.exports.keys().cloned().collect())
}

fn world_names(
    component: &[u8],
    names: impl Fn(&wac_graph::types::World) -> Vec<String>,
) -> anyhow::Result<Vec<String>> {
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes(
        "inspect:component",
        None,
        component.to_vec(),
        graph.types_mut(),
    )
    .context("reading the component")?;
    let world = package.ty();
    Ok(names(&graph.types()[world]))
}
