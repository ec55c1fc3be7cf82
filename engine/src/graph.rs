//! The parts to install and their order, as a petgraph DAG.
