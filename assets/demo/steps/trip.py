"""TripBookingSaga steps for the sagascope demo (standard library only).

Context JSON on stdin, a JSON object on stdout merged into the context,
non-zero exit with the reason on stderr for a failure.
"""
import hashlib
import json
import os
import sys

CARS = {"Oslo": ["compact", "estate"], "Lisbon": ["compact", "convertible"], "Berlin": ["compact", "estate", "van"]}
NIGHTLY = {"Oslo": 190, "Lisbon": 120, "Berlin": 140}


def ref(prefix, *parts):
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()
    return f"{prefix}-{digest[:10]}".upper()


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)


def main():
    action = sys.argv[1]
    ctx = json.load(sys.stdin)
    trip = ctx.get("trip_id", "?")
    # Holds, bookings and payments are new ones each time they are made (a
    # replay that re-holds after the original run released gets its own).
    saga = os.environ.get("SAGASCOPE_SAGA_ID", "")
    out = {}
    if action == "validate_request":
        if not ctx.get("traveler", {}).get("email"):
            fail(f"trip {trip}: traveler has no email")
        out = {"validated": True}
    elif action == "hold_flights":
        out = {"flight_holds": [ref("FH", trip, saga, s["flight"]) for s in ctx.get("segments", [])]}
    elif action == "release_flights":
        out = {"flights_released": len(ctx.get("flight_holds", []))}
    elif action == "hold_hotel":
        hotel = ctx["hotel"]
        out = {"hotel_hold": ref("HH", trip, saga, hotel["city"]), "hotel_cost": NIGHTLY.get(hotel["city"], 150) * hotel["nights"]}
    elif action == "release_hotel":
        out = {"hotel_released": ctx.get("hotel_hold")}
    elif action == "rent_car":
        car = ctx.get("car") or {}
        city = car.get("city")
        if car.get("class") not in CARS.get(city, []):
            fail(f"no {car.get('class')} cars available in {city} (available: {', '.join(CARS.get(city, []))})")
        out = {"car_booking": ref("CAR", trip, saga, city, car["class"]), "car_cost": 60 * ctx["hotel"]["nights"]}
    elif action == "cancel_car":
        out = {"car_cancelled": ctx.get("car_booking")}
    elif action == "charge_card":
        total = sum(s["fare"] for s in ctx.get("segments", [])) + ctx.get("hotel_cost", 0) + ctx.get("car_cost", 0)
        limit = ctx.get("card", {}).get("limit", 0)
        if total > limit:
            fail(f"card limit exceeded: trip costs {total} {ctx.get('currency', 'EUR')}, limit is {limit}")
        out = {"payment": {"id": ref("PAY", trip, saga, total), "amount": total}}
    elif action == "refund_card":
        out = {"refunded": ctx.get("payment", {}).get("id")}
    elif action == "issue_tickets":
        out = {"tickets": [ref("TKT", h) for h in ctx.get("flight_holds", [])]}
    elif action == "send_itinerary":
        out = {"itinerary_sent_to": ctx["traveler"]["email"]}
    else:
        fail(f"unknown action {action}")
    json.dump(out, sys.stdout)


main()
