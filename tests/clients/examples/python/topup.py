"""A Python client of the gateway's gRPC face with grpcio.

Create a top-up (idempotent: one request_id per operation, the same on
every retry), read it back, and follow the account group's top-up events,
resuming after a disconnect with the last resume_token.

The message classes come from the API's descriptors, so nothing needs
generating:

    go tool buf build --as-file-descriptor-set -o gateway.binpb
    python3 topup.py gateway.binpb 127.0.0.1:9090 2596db3b-0d03-4651-9eda-970910479dfb

(grpcio and protobuf: pip install grpcio protobuf, or Debian's
python3-grpcio and python3-protobuf.)
"""

import json
import sys
import time
import uuid

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

V1 = "upvest.gateway.v1."


def load_messages(path):
    """Returns a function from a message name to its class."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:  # dependencies first, as buf writes them
        pool.AddSerializedFile(f.SerializeToString())
    factory = message_factory.MessageFactory(pool)

    def cls(name):
        d = pool.FindMessageTypeByName(V1 + name)
        get = getattr(message_factory, "GetMessageClass", None)  # protobuf 4+
        return get(d) if get else factory.GetPrototype(d)

    return cls


class Topups:
    def __init__(self, channel, messages):
        self.m = messages
        svc = "/" + V1 + "TopupService/"
        self._create = channel.unary_unary(
            svc + "CreateTopup",
            request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=messages("CreateTopupResponse").FromString)
        self._get = channel.unary_unary(
            svc + "GetTopup",
            request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=messages("GetTopupResponse").FromString)
        self._watch = channel.unary_stream(
            svc + "WatchTopupEvents",
            request_serializer=lambda r: r.SerializeToString(),
            response_deserializer=messages("WatchTopupEventsResponse").FromString)

    def create(self, account_group_id, cash_amount, request_id=None):
        """Creates a top-up; on an error, retry with the same request_id."""
        req = self.m("CreateTopupRequest")(
            request_id=request_id or str(uuid.uuid4()),
            account_group_id=account_group_id, cash_amount=cash_amount, currency="EUR")
        resp, call = self._create.with_call(req, timeout=30)
        key = dict(call.initial_metadata()).get("idempotency-key")
        return resp.topup, key

    def get(self, topup_id):
        return self._get(self.m("GetTopupRequest")(topup_id=topup_id), timeout=30).topup

    def watch(self, account_group_id, resume_token=""):
        """Yields top-up events for ever, resuming after UNAVAILABLE."""
        while True:
            req = self.m("WatchTopupEventsRequest")(account_group_id=account_group_id, resume_token=resume_token)
            try:
                for msg in self._watch(req):
                    resume_token = msg.resume_token  # heartbeats advance it too
                    if msg.HasField("event"):
                        yield msg.event
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
                    raise
                time.sleep(0.5)


def as_json(m):
    return json_format.MessageToDict(m, preserving_proto_field_name=True)


def main(descriptors, address="127.0.0.1:9090", account_group_id=None):
    account_group_id = account_group_id or str(uuid.uuid4())
    with grpc.insecure_channel(address) as channel:
        topups = Topups(channel, load_messages(descriptors))
        created, key = topups.create(account_group_id, "100.00")
        read = topups.get(created.id)
        print(json.dumps({"created": as_json(created), "read": as_json(read), "idempotency_key": key}))


if __name__ == "__main__":
    main(*sys.argv[1:])
