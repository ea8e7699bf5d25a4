"""DynamoDB's billing and throughput, in front of moto (scripts/moto-serial imports it).

moto bills nothing and never throttles. A test arms a meter on its tables (every table whose name
starts with its prefix): POST /moto-serial/meter {"prefix": P, "scale": s, "table_wcu": w}.
From then on every DynamoDB request naming those tables is billed as DynamoDB bills it
("DynamoDB read and write operations", "Item sizes", "Global secondary indexes: provisioned
throughput considerations" and "Transactions: capacity management" in the developer guide):

- an item's size is the sum of its attribute names and values (strings and binaries by their
  bytes, a number 1 byte per two significant digits plus 1, a boolean or null 1 byte, a list or
  map 3 bytes plus its elements and 1 byte per element, a set its members);
- a write is billed per item at its size rounded up per 1 KB, at least 1 unit; an update or an
  overwrite at the larger of the item before and after; a delete at the deleted item; a write
  whose condition fails at the larger of the item it found and the one it would have written;
- every secondary index holding the item (it has the index's key attributes) is written again
  at the size of the item's projection: one write when the item enters or leaves the index or
  a projected attribute changes, two when the index key changes, none when nothing projected
  changed;
- a transaction's writes (and reads) are billed twice;
- a read at its size rounded up per 4 KB, at least one unit, half for an eventually consistent
  read; a Query at the sum of the sizes it returns, rounded up once (items a filter dropped are
  not counted here: an under-estimate, never an over-estimate of what is reported).

With `scale` > 0 it also enforces DynamoDB's throughput, scaled so that a test with hundreds of
people meets the limits a broadcast of hundreds of thousands meets: each partition key of a
table or index takes 1,000 x scale write units a second, each table `table_wcu` x scale (4,000:
what a new on-demand table starts near; a warmed table's figure otherwise), each with one
second's burst (at least one unit). Reads likewise, scaled by `read_scale` (`scale` unless
given): 3,000 read units a second per partition key of a table or index, 12,000 per table or
index (a new on-demand table's read figure; `table_rcu` otherwise). A request naming a key or
table without a whole unit left is refused as DynamoDB refuses it, nothing done:
ProvisionedThroughputExceededException for a partition (ThrottlingException for the table), a
BatchWriteItem's throttled requests come back as UnprocessedItems and a BatchGetItem's throttled
keys as UnprocessedKeys (the exception when none was served), a transaction is cancelled with
ThrottlingError as the reason of each throttled action. A Query is throttled by the partition
key its key condition names. (A BatchGetItem's throttled items are told apart by their key
attributes: a projection that leaves the keys out is not supported.) What a request costs is known only once it is served, so a key
may overdraw by one request, as DynamoDB's own accounting lets a request finish.

GET /moto-serial/meter/P answers what was billed: write and read units in all, per table (and
index), per operation, the hottest partition keys and the most write units any key took in one
second, and the requests throttled.
"""
import base64
import copy
import json
import math
import re
import time

from moto.dynamodb.models.dynamo_type import DynamoType

PATH = "/moto-serial/meter"
WRITE_UNIT = 1024
READ_UNIT = 4096
PARTITION_WCU = 1000
NEW_TABLE_WCU = 4000
PARTITION_RCU = 3000
NEW_TABLE_RCU = 12000

# Armed meters, by table-name prefix.
_meters = {}


def arm(spec):
    """{"prefix", "scale", "table_wcu"[, "read_scale", "table_rcu"]} arms (or re-arms, from
    nothing billed) a meter;
    {"prefix", "advance": s} tells an armed one that s seconds passed (a test's clock moved on, as
    SQS's visibility timeout passes before a failed record comes back): its units refill."""
    prefix = spec["prefix"]
    if "advance" in spec:
        meter = _meters.get(prefix)
        if meter is not None:
            meter.offset += float(spec["advance"])
        return {"advanced": meter is not None}
    scale = float(spec.get("scale") or 0)
    read_scale = float(spec["read_scale"]) if spec.get("read_scale") is not None else scale
    _meters[prefix] = Meter(
        prefix, scale, float(spec.get("table_wcu") or NEW_TABLE_WCU),
        read_scale, float(spec.get("table_rcu") or NEW_TABLE_RCU),
    )
    return {"armed": prefix}


def report(prefix):
    meter = _meters.get(prefix)
    return meter.report() if meter else None


def armed(tables):
    for name in tables:
        for prefix, meter in _meters.items():
            if name and name.startswith(prefix):
                return meter
    return None


# --- Sizes ---------------------------------------------------------------------------------------

def number_size(text):
    digits = text.lstrip("-+").lower().split("e")[0].replace(".", "").strip("0")
    return max(1, math.ceil(len(digits) / 2)) + 1


def binary_size(x):
    """A binary value's bytes: base64 text on the wire, raw bytes in moto's stored items."""
    if isinstance(x, (bytes, bytearray)):
        return len(x)
    return len(base64.b64decode(x))


def value_size(value):
    (kind, x), = value.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        return number_size(x)
    if kind == "B":
        return binary_size(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in x)
    if kind == "NS":
        return sum(number_size(s) for s in x)
    if kind == "BS":
        return sum(binary_size(b) for b in x)
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(v) + 1 for k, v in x.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item):
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size):
    return max(1, math.ceil(size / WRITE_UNIT))


def read_units(size, consistent):
    units = max(1, math.ceil(size / READ_UNIT))
    return units if consistent else units / 2


# --- Tables, items, indexes -----------------------------------------------------------------------

def _indexes(table):
    """(name, key attribute names, projection) of each secondary index."""
    out = []
    for index in list(getattr(table, "global_indexes", []) or []) + list(getattr(table, "indexes", []) or []):
        keys = [k["AttributeName"] for k in index.schema]
        out.append((index.name, keys, index.projection or {"ProjectionType": "ALL"}))
    return out


def _key_attrs(table):
    return [a for a in (table.hash_key_attr, table.range_key_attr) if a]


def _key_of(table, item):
    return {a: item[a] for a in _key_attrs(table) if a in item}


def _stored(table, key):
    try:
        h = DynamoType(key[table.hash_key_attr])
        r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        item = table.get_item(h, r)
    except Exception:
        return None
    return copy.deepcopy(item.to_json()["Attributes"]) if item else None


def _moto_item(table, key):
    """moto's own item at `key` (a copy), to put back."""
    h = DynamoType(key[table.hash_key_attr])
    r = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    try:
        return h, r, copy.deepcopy(table.get_item(h, r))
    except Exception:
        return h, r, None


def _put_back(table, key, saved):
    h, r, item = saved
    if r is None:
        if item is None:
            table.items.pop(h, None)
        else:
            table.items[h] = item
    elif item is None:
        table.items.get(h, {}).pop(r, None)
    else:
        table.items.setdefault(h, {})[r] = item


def _projection(table, index_keys, projection, item):
    kind = projection.get("ProjectionType", "ALL")
    if kind == "ALL":
        return item
    wanted = set(_key_attrs(table)) | set(index_keys)
    if kind == "INCLUDE":
        wanted |= set(projection.get("NonKeyAttributes", []))
    return {k: v for k, v in item.items() if k in wanted}


def _index_writes(table, before, after):
    """[(index name, index partition key value, units)] of one item's write."""
    out = []
    for name, keys, projection in _indexes(table):
        held_before = before is not None and all(k in before for k in keys)
        held_after = after is not None and all(k in after for k in keys)
        old = _projection(table, keys, projection, before) if held_before else None
        new = _projection(table, keys, projection, after) if held_after else None
        hash_of = lambda item: json.dumps(item[keys[0]], sort_keys=True)
        if held_before and held_after:
            if any(before[k] != after[k] for k in keys):
                out.append((name, hash_of(before), write_units(item_size(old))))
                out.append((name, hash_of(after), write_units(item_size(new))))
            elif old != new:
                out.append((name, hash_of(after), write_units(max(item_size(old), item_size(new)))))
        elif held_before:
            out.append((name, hash_of(before), write_units(item_size(old))))
        elif held_after:
            out.append((name, hash_of(after), write_units(item_size(new))))
    return out


def _read_target(table, operation, params):
    """What a read draws on: the table or `table/index` it names, and the partition key it reads
    (a GetItem's key; the value a Query's key condition sets the hash key to; None for a Scan)."""
    name = params["TableName"]
    if operation == "GetItem":
        return name, json.dumps(params.get("Key", {}).get(table.hash_key_attr), sort_keys=True)
    hash_attr = table.hash_key_attr
    if params.get("IndexName"):
        name = f"{name}/{params['IndexName']}"
        for index, keys, _ in _indexes(table):
            if index == params["IndexName"]:
                hash_attr = keys[0]
    if operation != "Query":
        return name, None
    names = params.get("ExpressionAttributeNames") or {}
    values = params.get("ExpressionAttributeValues") or {}
    condition = params.get("KeyConditionExpression") or ""
    pairs = re.findall(r"(#?[A-Za-z_][\w]*)\s*=\s*(:[\w]+)", condition)
    pairs += [(a, p) for p, a in re.findall(r"(:[\w]+)\s*=\s*(#?[A-Za-z_][\w]*)", condition)]
    for attr, placeholder in pairs:
        if names.get(attr, attr) == hash_attr and placeholder in values:
            return name, json.dumps(values[placeholder], sort_keys=True)
    return name, None


class Bucket:
    """Units a second, with one second's burst (at least one unit); a request is let in while a
    whole unit is left, and may overdraw it by what it turns out to cost."""

    def __init__(self, rate, now):
        self.rate, self.capacity = rate, max(rate, 1.0)
        self.balance, self.at = self.capacity, now

    def available(self, now):
        self.balance = min(self.capacity, self.balance + max(0.0, now - self.at) * self.rate)
        self.at = now
        return self.balance >= 1

    def take(self, units, now):
        self.available(now)
        self.balance -= units


class Meter:
    def __init__(self, prefix, scale, table_wcu, read_scale=0.0, table_rcu=NEW_TABLE_RCU):
        self.prefix, self.scale, self.table_wcu = prefix, scale, table_wcu
        self.read_scale, self.table_rcu = read_scale, table_rcu
        self.write_units = 0.0
        self.read_units = 0.0
        self.per_table = {}
        self.per_operation = {}
        self.per_key = {}
        self.per_key_second = {}
        self.throttled = {}
        self.buckets = {}
        self.offset = 0.0
        self.started = time.monotonic()

    # Throughput.
    def now(self):
        """Seconds: the real time, and the time a test said passed."""
        return time.monotonic() + self.offset

    def _bucket(self, name, rate):
        if name not in self.buckets:
            self.buckets[name] = Bucket(rate, self.now())
        return self.buckets[name]

    def _key_bucket(self, table_name, hash_value):
        return self._bucket(("key", table_name, hash_value), PARTITION_WCU * self.scale)

    def _table_bucket(self, table_name):
        return self._bucket(("table", table_name), self.table_wcu * self.scale)

    def _refused(self, table, table_name, key):
        """Why a write to `key` would be throttled now: 'partition', 'table' or None."""
        if self.scale <= 0 or table is None:
            return None
        now = self.now()
        if not self._table_bucket(table_name).available(now):
            return "table"
        hash_value = json.dumps(key.get(table.hash_key_attr), sort_keys=True)
        if not self._key_bucket(table_name, hash_value).available(now):
            return "partition"
        stored = _stored(table, key) or {}
        for name, keys, _ in _indexes(table):
            index_key = json.dumps(stored[keys[0]], sort_keys=True) if keys[0] in stored else None
            if index_key and not self._key_bucket(f"{table_name}/{name}", index_key).available(now):
                return "partition"
        return None

    def _read_refused(self, where, hash_value):
        """Why a read of `where` (a table, or table/index) at the partition `hash_value` would be
        throttled now: 'partition', 'table' or None."""
        if self.read_scale <= 0:
            return None
        now = self.now()
        if not self._bucket(("read-table", where), self.table_rcu * self.read_scale).available(now):
            return "table"
        if hash_value is not None and not self._bucket(("read-key", where, hash_value), PARTITION_RCU * self.read_scale).available(now):
            return "partition"
        return None

    def _take_read(self, where, hash_value, units):
        if self.read_scale <= 0:
            return
        now = self.now()
        self._bucket(("read-table", where), self.table_rcu * self.read_scale).take(units, now)
        if hash_value is not None:
            self._bucket(("read-key", where, hash_value), PARTITION_RCU * self.read_scale).take(units, now)

    def _count_throttle(self, operation):
        self.throttled[operation] = self.throttled.get(operation, 0) + 1

    # Billing.
    def _bill_write(self, operation, table, table_name, before, after, failed_with=None, times=1):
        if failed_with is not None:
            units = write_units(max(item_size(before), item_size(failed_with)))
            index = []
        else:
            units = write_units(max(item_size(before), item_size(after)))
            index = _index_writes(table, before, after)
        key_item = after or before or failed_with or {}
        hash_value = json.dumps(key_item.get(table.hash_key_attr), sort_keys=True)
        charges = [(table_name, hash_value, units * times)]
        charges += [(f"{table_name}/{name}", value, u * times) for name, value, u in index]
        second = int(self.now() - self.started)
        for where, value, u in charges:
            self.write_units += u
            short = where[len(self.prefix):] if where.startswith(self.prefix) else where
            entry = self.per_table.setdefault(short, {"write_units": 0, "read_units": 0})
            entry["write_units"] += u
            self.per_operation[operation] = self.per_operation.get(operation, 0) + u
            self.per_key[(short, value)] = self.per_key.get((short, value), 0) + u
            self.per_key_second[(short, value, second)] = self.per_key_second.get((short, value, second), 0) + u
            if self.scale > 0:
                self._key_bucket(where, value).take(u, self.now())
                if "/" not in where:
                    self._table_bucket(where).take(u, self.now())

    def _bill_read(self, operation, table_name, units, hash_value=None):
        self._take_read(table_name, hash_value, units)
        self.read_units += units
        short = table_name[len(self.prefix):] if table_name.startswith(self.prefix) else table_name
        self.per_table.setdefault(short, {"write_units": 0, "read_units": 0})["read_units"] += units
        self.per_operation[operation] = self.per_operation.get(operation, 0) + units

    # Requests.
    def before(self, operation, params, region, table_of):
        """Throttles or snapshots a request. Returns (refusal, state): a refusal is
        (exception, cancellation reasons) to answer at once; state goes to `after`."""
        writes = []  # (table name, key, the item a Put would write)
        unread = {}  # a BatchGetItem's throttled keys, by table
        if operation in ("GetItem", "Query"):
            table = table_of(params.get("TableName"))
            if table is not None:
                where, hash_value = _read_target(table, operation, params)
                why = self._read_refused(where, hash_value)
                if why:
                    self._count_throttle(operation)
                    code = "ThrottlingException" if why == "table" else "ProvisionedThroughputExceededException"
                    return (code, None), None
        elif operation == "BatchGetItem":
            served = 0
            for table_name, spec in params.get("RequestItems", {}).items():
                table = table_of(table_name)
                for key in spec.get("Keys", []):
                    hash_value = json.dumps(key.get(table.hash_key_attr), sort_keys=True) if table else None
                    if table is not None and self._read_refused(table_name, hash_value):
                        unread.setdefault(table_name, []).append(key)
                    else:
                        served += 1
            if unread:
                self._count_throttle(operation)
                if not served:
                    return ("ProvisionedThroughputExceededException", None), None
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = table_of(params.get("TableName"))
            if table is not None:
                key = _key_of(table, params["Item"]) if operation == "PutItem" else params.get("Key", {})
                why = self._refused(table, params["TableName"], key)
                if why:
                    self._count_throttle(operation)
                    code = "ThrottlingException" if why == "table" else "ProvisionedThroughputExceededException"
                    return (code, None), None
                writes.append((params["TableName"], key, params.get("Item")))
        elif operation == "BatchWriteItem":
            # The request is signed as sent, so moto serves it whole; the throttled requests'
            # items are put back as they were afterwards (`after`).
            kept, unprocessed, undo = 0, {}, []
            for table_name, requests in params.get("RequestItems", {}).items():
                table = table_of(table_name)
                for request in requests:
                    put = (request.get("PutRequest") or {}).get("Item")
                    key = _key_of(table, put) if put and table else (request.get("DeleteRequest") or {}).get("Key", {})
                    if table is not None and self._refused(table, table_name, key):
                        unprocessed.setdefault(table_name, []).append(request)
                        undo.append((table, key, _moto_item(table, key)))
                        continue
                    kept += 1
                    if table is not None:
                        writes.append((table_name, key, put))
            if unprocessed:
                self._count_throttle(operation)
                if not kept:
                    return ("ProvisionedThroughputExceededException", None), None
            return None, {"writes": self._snapshot(writes, table_of), "unprocessed": unprocessed, "undo": undo, "unread": {}}
        elif operation == "TransactWriteItems":
            reasons, throttled = [], False
            for action in params.get("TransactItems", []):
                (kind, spec), = action.items()
                table = table_of(spec.get("TableName"))
                key = _key_of(table, spec["Item"]) if kind == "Put" and table else spec.get("Key", {})
                why = self._refused(table, spec.get("TableName"), key) if table is not None else None
                throttled |= bool(why)
                reasons.append({"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity for one or more global secondary indexes or the table"} if why else {"Code": "None"})
                if table is not None:
                    writes.append((spec["TableName"], key, spec.get("Item") if kind == "Put" else None))
            if throttled:
                self._count_throttle(operation)
                return ("TransactionCanceledException", reasons), None
        return None, {"writes": self._snapshot(writes, table_of), "unprocessed": {}, "undo": [], "unread": unread}

    def _snapshot(self, writes, table_of):
        return [(name, key, put, _stored(table_of(name), key)) for name, key, put in writes]

    def after(self, operation, params, state, status, body, table_of):
        """Bills a served request; returns the body to answer (a batch's throttled requests
        undone and answered as unprocessed)."""
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            return body  # not DynamoDB's answer (an IAM refusal moto words in XML)
        if state is not None and state["undo"] and status.startswith("2"):
            for table, key, item in state["undo"]:
                _put_back(table, key, item)
        times = 2 if operation in ("TransactWriteItems", "TransactGetItems") else 1
        if state is not None and state["writes"]:
            failed_condition = not status.startswith("2") and "ConditionalCheckFailed" in (answer.get("__type") or "")
            if status.startswith("2") or failed_condition:
                for name, key, put, before in state["writes"]:
                    table = table_of(name)
                    if failed_condition:
                        self._bill_write(operation, table, name, before, None, failed_with=put or before or key, times=times)
                    else:
                        self._bill_write(operation, table, name, before, _stored(table, key), times=times)
        unread = (state or {}).get("unread") or {}
        if unread and status.startswith("2"):
            # The throttled keys were served by moto: their items leave the answer, and the keys
            # come back unprocessed, as DynamoDB answers them.
            for name, keys in unread.items():
                table = table_of(name)
                refused = {json.dumps(k, sort_keys=True) for k in keys}
                found = answer.setdefault("Responses", {}).get(name, [])
                answer["Responses"][name] = [
                    i for i in found if json.dumps(_key_of(table, i), sort_keys=True) not in refused
                ]
                spec = {k: v for k, v in params["RequestItems"][name].items() if k != "Keys"}
                entry = answer.setdefault("UnprocessedKeys", {}).setdefault(name, dict(spec, Keys=[]))
                entry["Keys"].extend(keys)
        if status.startswith("2"):
            self._bill_reads(operation, params, answer, table_of)
        if state is not None and state["unprocessed"] and status.startswith("2"):
            merged = answer.setdefault("UnprocessedItems", {})
            for name, requests in state["unprocessed"].items():
                merged.setdefault(name, []).extend(requests)
            return json.dumps(answer).encode()
        if unread and status.startswith("2"):
            return json.dumps(answer).encode()
        return body

    def _bill_reads(self, operation, params, answer, table_of):
        if operation == "GetItem":
            size = item_size(answer.get("Item"))
            table = table_of(params["TableName"])
            where, hash_value = _read_target(table, operation, params) if table else (params["TableName"], None)
            self._bill_read(operation, where, read_units(size, params.get("ConsistentRead", False)), hash_value)
        elif operation == "BatchGetItem":
            for name, spec in params.get("RequestItems", {}).items():
                found = answer.get("Responses", {}).get(name, [])
                table = table_of(name)
                sizes = {json.dumps(_key_of(table, i), sort_keys=True): item_size(_stored(table, _key_of(table, i)) or i) for i in found} if table else {}
                unprocessed = answer.get("UnprocessedKeys", {}).get(name, {}).get("Keys", [])
                for key in spec.get("Keys", []):
                    if key in unprocessed:
                        continue
                    size = sizes.get(json.dumps(key, sort_keys=True), 0)
                    hash_value = json.dumps(key.get(table.hash_key_attr), sort_keys=True) if table else None
                    self._bill_read(operation, name, read_units(size, spec.get("ConsistentRead", False)), hash_value)
        elif operation in ("Query", "Scan"):
            size = sum(item_size(i) for i in answer.get("Items", []))
            table = table_of(params["TableName"])
            where, hash_value = _read_target(table, operation, params) if table else (params["TableName"], None)
            self._bill_read(operation, where, read_units(size, params.get("ConsistentRead", False)), hash_value)
        elif operation == "TransactGetItems":
            for action, found in zip(params.get("TransactItems", []), answer.get("Responses", [])):
                self._bill_read(operation, action["Get"]["TableName"], 2 * read_units(item_size((found or {}).get("Item")), True))

    def report(self):
        hottest = sorted(self.per_key.items(), key=lambda kv: -kv[1])[:5]
        peak = max(self.per_key_second.items(), key=lambda kv: kv[1], default=(("", "", 0), 0))
        return {
            "write_units": self.write_units,
            "read_units": self.read_units,
            "tables": self.per_table,
            "operations": self.per_operation,
            "hottest_keys": [{"table": t, "key": k, "write_units": u} for (t, k), u in hottest],
            "peak_key_second": {"table": peak[0][0], "key": peak[0][1], "write_units": peak[1]},
            "throttled": self.throttled,
            "scale": self.scale,
        }
