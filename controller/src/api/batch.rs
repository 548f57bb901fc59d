//! JSON-RPC batches: [`GroupWrites`], the RPC middleware that answers a batch as jsonrpsee
//! does (in order, each call on its own), except that a run of consecutive writes is
//! handed to the writer as one group ([`ModelWriter::submit_together`]): one commit, one
//! compile, one install for the run, instead of one each per call.
//!
//! Only consecutive writes are grouped. A read, a notification or a malformed entry in
//! between ends the run and waits for it, so a read sees every write before it in the
//! batch, as when the calls ran one by one. Within a run the writer plans the calls in
//! batch order, each against the model the earlier ones left, so a batch may create a
//! switch and then its ports. Each call keeps its own answer: one refused call fails
//! alone. What is not kept: the views in the answers of a run are drawn after the whole
//! run committed (a `switch_update`'s port count, say, counts ports the run created), as
//! for concurrent clients whose writes share a commit.

use std::future::Future;

use jsonrpsee::server::middleware::rpc::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::Request;

use super::spec;
use crate::northbound::ModelWriter;

/// Wraps jsonrpsee's RPC service (see the module doc).
#[derive(Clone)]
pub struct GroupWrites<S> {
    service: S,
    writer: ModelWriter,
    /// The server's response size limit, which a batch's answer as a whole obeys.
    max_response: usize,
}

impl<S> GroupWrites<S> {
    pub fn new(service: S, writer: ModelWriter, max_response: usize) -> Self {
        GroupWrites {
            service,
            writer,
            max_response,
        }
    }
}

/// Whether `method` goes through the writer.
fn writes(method: &str) -> bool {
    spec::method(method).is_some_and(spec::MethodSpec::writes)
}

fn is_write_call(entry: &Result<BatchEntry<'_>, impl Sized>) -> bool {
    matches!(entry, Ok(BatchEntry::Call(req)) if writes(req.method_name()))
}

impl<S> RpcServiceT for GroupWrites<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    type MethodResponse = MethodResponse;
    type BatchResponse = MethodResponse;
    type NotificationResponse = MethodResponse;

    fn call<'a>(&self, req: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.call(req)
    }

    fn notification<'a>(
        &self,
        n: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.service.notification(n)
    }

    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let writer = self.writer.clone();
        let mut answers = BatchResponseBuilder::new_with_limit(self.max_response);
        async move {
            let mut got_notification = false;
            let mut entries = batch.into_iter().peekable();
            while let Some(entry) = entries.next() {
                let responses = match entry {
                    Ok(BatchEntry::Call(first)) if writes(first.method_name()) => {
                        let mut run = vec![service.call(first)];
                        while let Some(Ok(BatchEntry::Call(req))) = entries.next_if(is_write_call) {
                            run.push(service.call(req));
                        }
                        writer.submit_together(run).await
                    }
                    Ok(BatchEntry::Call(req)) => vec![service.call(req).await],
                    Ok(BatchEntry::Notification(n)) => {
                        got_notification = true;
                        service.notification(n).await;
                        continue;
                    }
                    Err(err) => {
                        let (err, id) = err.into_parts();
                        vec![MethodResponse::error(id, err)]
                    }
                };
                for answer in responses {
                    if let Err(too_large) = answers.append(answer) {
                        return too_large;
                    }
                }
            }
            // As jsonrpsee: nothing to answer for notifications only; an empty batch is
            // an invalid request.
            if answers.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(answers.finish())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grouping a read with the writes around it would let it run before them: the methods
    /// taken for writes must be exactly those that go through the writer.
    #[test]
    fn the_grouped_methods_are_the_writes() {
        let grouped: Vec<&str> = spec::METHODS
            .iter()
            .filter(|m| m.writes())
            .map(|m| m.name)
            .collect();
        assert_eq!(
            grouped,
            [
                "switch_create",
                "switch_update",
                "switch_delete",
                "port_create",
                "port_update",
                "port_delete",
                "acl_create",
                "acl_delete",
                "router_create",
                "router_delete",
                "router_port_create",
                "router_port_delete",
                "route_create",
                "route_delete",
                "vtep_bind",
                "vtep_unbind",
            ]
        );
    }
}
