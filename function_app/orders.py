"""The order workflow: reserve stock, take payment, schedule shipping, email the customer.

A failed payment releases the reserved stock and ends the orchestration as Failed with a
custom status that says why.
"""

import hashlib
import json
import logging

import azure.durable_functions as df
import azure.functions as func

orders = df.Blueprint()

DECLINED_CARD_SUFFIX = "0000"
STOCK_LIMIT = 100


class PaymentDeclined(Exception):
    pass


class OutOfStock(Exception):
    pass


@orders.route(route="orders", methods=["POST"])
@orders.durable_client_input(client_name="client")
async def place_order_http(req: func.HttpRequest, client: df.DurableOrchestrationClient):
    try:
        order = req.get_json()
    except ValueError:
        return func.HttpResponse('{"error": "the body must be the order as JSON"}',
                                 status_code=400, mimetype="application/json")
    missing = [k for k in ("orderId", "items", "card", "email") if k not in order]
    if missing:
        return func.HttpResponse(
            json.dumps({"error": f"missing fields: {', '.join(missing)}"}),
            status_code=400, mimetype="application/json")
    instance_id = await client.start_new("PlaceOrder", None, order)
    logging.info("Started PlaceOrder for order %s as %s.", order["orderId"], instance_id)
    return client.create_check_status_response(req, instance_id)


@orders.orchestration_trigger(context_name="context", orchestration="PlaceOrder")
def place_order(context: df.DurableOrchestrationContext):
    order = context.get_input()
    context.set_custom_status({"stage": "reserving"})
    reservation = yield context.call_activity("CheckAndReserveInventory", order)
    context.set_custom_status({"stage": "charging"})
    try:
        payment = yield context.call_activity("ProcessPayment", order)
    except Exception as error:
        # Compensate: give the reserved stock back before failing the order.
        yield context.call_activity("ReleaseInventory", reservation)
        context.set_custom_status({"stage": "payment-failed",
                                   "reservationReleased": reservation["reservationId"]})
        # The SDK's message is "<reason> \n <details>": the reason is what a person reads.
        reason = str(error).split(" \n ", 1)[0]
        raise RuntimeError(f"Payment for order {order['orderId']} failed: {reason}") from None
    context.set_custom_status({"stage": "shipping"})
    shipment = yield context.call_activity(
        "ScheduleShipping", {"order": order, "paymentId": payment["paymentId"]})
    yield context.call_activity(
        "EmailCustomer", {"email": order["email"], "trackingNumber": shipment["trackingNumber"]})
    context.set_custom_status({"stage": "done"})
    return shipment["trackingNumber"]


def _token(prefix: str, *parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()[:10].upper()
    return f"{prefix}-{digest}"


@orders.activity_trigger(input_name="order", activity="CheckAndReserveInventory")
def check_and_reserve_inventory(order: dict) -> dict:
    quantity = sum(int(item.get("quantity", 1)) for item in order["items"])
    if quantity > STOCK_LIMIT:
        raise OutOfStock(f"only {STOCK_LIMIT} items are in stock, {quantity} were ordered")
    return {"reservationId": _token("RES", order["orderId"]), "quantity": quantity}


@orders.activity_trigger(input_name="reservation", activity="ReleaseInventory")
def release_inventory(reservation: dict) -> dict:
    logging.info("Released reservation %s.", reservation["reservationId"])
    return {"released": reservation["reservationId"]}


@orders.activity_trigger(input_name="order", activity="ProcessPayment")
def process_payment(order: dict) -> dict:
    if str(order["card"]).endswith(DECLINED_CARD_SUFFIX):
        raise PaymentDeclined("card declined")
    return {"paymentId": _token("PAY", order["orderId"], order["card"])}


@orders.activity_trigger(input_name="request", activity="ScheduleShipping")
def schedule_shipping(request: dict) -> dict:
    return {"trackingNumber": _token("TRK", request["order"]["orderId"], request["paymentId"])}


@orders.activity_trigger(input_name="message", activity="EmailCustomer")
async def email_customer(message: dict) -> dict:
    logging.info("Emailed %s: your parcel is on its way (%s).", message["email"],
                 message["trackingNumber"])
    return {"sent": True}
