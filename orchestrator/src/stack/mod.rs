//! Stacks: a Compose project turned into swarm services, overlay networks, secrets and
//! configs, as docker's
//! `stack deploy` does (docker/cli's cli/compose/convert), plus the dependency order in which
//! Berth creates them.

mod convert;

pub use convert::{
    LABEL_IMAGE, LABEL_NAMESPACE, StackData, StackError, StackNetwork, StackPlan, StackService,
    convert, scoped,
};
