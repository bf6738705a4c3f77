//! The organizations a session reads: a client each (its own key, budgets
//! and cache), all sharing one request log and one list of notices.

use std::sync::Arc;

use super::{ApiError, Client, ClientConfig, Wait};

/// One organization or several; never none.
#[derive(Debug, Clone)]
pub struct Orgs {
    first: Client,
    rest: Arc<Vec<Client>>,
    /// The connections' names (`--org NAME`), in order; empty when the
    /// organization came from `--org-id` or the demo.
    names: Arc<Vec<String>>,
}

impl Orgs {
    /// The organizations of these connections, in order.
    pub fn new(first: ClientConfig, rest: Vec<ClientConfig>) -> Result<Self, ApiError> {
        let first = Client::new(first)?;
        let rest = rest
            .into_iter()
            .map(|config| first.sibling(config))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            first,
            rest: Arc::new(rest),
            names: Arc::default(),
        })
    }

    /// With the connections' names, for the prompt and reports.
    pub fn named(mut self, names: Vec<String>) -> Self {
        self.names = Arc::new(names);
        self
    }

    pub fn clients(&self) -> impl Iterator<Item = &Client> {
        std::iter::once(&self.first).chain(self.rest.iter())
    }

    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Never true; for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first organization's client: also the way to what the clients
    /// share (the request log, the notices, the clock).
    pub fn first(&self) -> &Client {
        &self.first
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The organization ids, in order.
    pub fn ids(&self) -> Vec<String> {
        self.clients().map(|c| c.org_id().to_string()).collect()
    }

    /// The longest notable wait for a rate budget, in any organization.
    pub fn longest_wait(&self) -> Option<Wait> {
        self.clients()
            .filter_map(Client::longest_wait)
            .max_by_key(|w| w.until)
    }

    /// Forget cached pages, of one table or all, in every organization.
    pub fn clear_cache(&self, table: Option<&str>) {
        for client in self.clients() {
            client.clear_cache(table);
        }
    }
}

impl From<&Client> for Orgs {
    fn from(client: &Client) -> Self {
        Orgs {
            first: client.clone(),
            rest: Arc::default(),
            names: Arc::default(),
        }
    }
}

impl From<&Orgs> for Orgs {
    fn from(orgs: &Orgs) -> Self {
        orgs.clone()
    }
}
