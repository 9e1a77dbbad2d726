"""OrderSaga steps for the sagascope demo.

Each call gets the saga's context as JSON on stdin and prints a JSON object
whose keys are merged into the context. A non-zero exit is a failure; what
is printed on stderr becomes the error. Only the standard library is used.
"""
import hashlib
import json
import os
import sys


def ref(prefix, *parts):
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}_{digest[:12]}"


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)


def main():
    action = sys.argv[1]
    ctx = json.load(sys.stdin)
    order = ctx.get("order_id", "?")
    if action == "reserve_inventory":
        items = ctx.get("items", [])
        if not items:
            fail(f"order {order} has no items to reserve")
        # A reservation is a new one each time it is made: a replay that
        # re-reserves after the original run released its stock gets its own.
        saga = os.environ.get("SAGASCOPE_SAGA_ID", "")
        out = {"reservation_id": ref("res", order, saga), "reserved_skus": [i["sku"] for i in items]}
    elif action == "release_inventory":
        out = {"reservation_released": ctx.get("reservation_id")}
    elif action == "charge_payment":
        token = ctx.get("payment_token")
        if token == "expired":
            fail(f"payment declined: card token for order {order} has expired (ask for a new token)")
        if not isinstance(token, str) or not token.startswith("tok_"):
            fail(f"payment declined: invalid card token {token!r}")
        total = sum(i["qty"] * i["unit_price"] for i in ctx.get("items", []))
        out = {"charge_id": ref("ch", order, token), "charged_amount": round(total, 2)}
    elif action == "refund_payment":
        out = {"refund_id": ref("re", ctx.get("charge_id"))}
    elif action == "ship_order":
        addr = ctx.get("shipping_address", {})
        if not addr.get("country"):
            fail(f"cannot ship order {order}: no destination country")
        out = {"tracking_number": ref("trk", order).upper(), "carrier": "PostNL" if addr["country"] == "NL" else "DHL"}
    else:
        fail(f"unknown action {action}")
    json.dump(out, sys.stdout)


main()
