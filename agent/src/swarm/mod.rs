//! berthd's swarm side: the node's membership (certificates, role), the worker that runs the
//! tasks a manager assigns, and, on managers, the embedded manager.

pub mod worker;
