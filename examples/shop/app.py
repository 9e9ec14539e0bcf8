"""A tiny shop: log in, add to the cart, log out. Every page says which instance served it.

Run two of these behind a load balancer (``make demo`` does) and the cart
survives whichever instance the next request lands on.
"""

from __future__ import annotations

import os

from flask import Flask
from flask import Response
from flask import redirect
from flask import render_template_string
from flask import request
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from sharedsession.flask import Session
from sharedsession.flask import session

PRODUCTS = {"apple": "Apple", "bread": "Bread", "cheese": "Cheese", "dates": "Dates"}

# An inline icon: the browser asks for no /favicon.ico, which would otherwise
# take a turn in the round robin and make the next reload land on the same instance.
ICON = (
    "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%232a6f97'/%3E%3C/svg%3E"
)

PAGE = """<!doctype html>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{{ icon }}">
<title>sharedsession shop</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 1em auto; padding: 0 1em; }
  .instance { padding: .5em 1em; color: #fff; border-radius: 4px; margin: .3em 0; }
  .A { background: #2a6f97; } .B { background: #9a3b3b; }
  .notice { background: #fff3cd; padding: .5em 1em; border-radius: 4px; }
  button { margin: .2em; font-size: 1em; }
  small { color: #555; }
</style>
<p class="instance {{ instance }}" id="rendered">This page was rendered by instance
  <b>{{ instance }}</b> (process {{ pid }})</p>
{% if changed %}
<p class="instance {{ changed.instance }}" id="changed">The last change ({{ changed.what }}) was
  made by instance <b>{{ changed.instance }}</b></p>
{% endif %}
{% if notice %}<p class="notice" id="notice">{{ notice }}</p>{% endif %}
<p><small>Sessions live in {{ store }}.</small></p>
{% if user %}
  <p>Logged in as <b>{{ user }}</b>.</p>
  <form method="post" action="{{ url_for('logout') }}"><button>Log out</button></form>
{% else %}
  <form method="post" action="{{ url_for('login') }}">
    <input name="user" placeholder="your name" required> <button>Log in</button>
  </form>
{% endif %}
<h2>Products</h2>
{% for sku, name in products.items() %}
  <form method="post" action="{{ url_for('add', sku=sku) }}" style="display:inline">
    <button>Add {{ name }}</button></form>
{% endfor %}
<h2>Cart ({{ cart|length }})</h2>
<ul>{% for sku in cart %}<li>{{ products[sku] }}</li>{% else %}<li>empty</li>{% endfor %}</ul>
<p>Reload the page: the instance changes, the cart stays.</p>
"""


def store_description(redis_url: str | None, sqlite_path: str | None) -> str:
    """Where sessions live, for the page (a Redis URL without its password)."""
    if redis_url:
        from sharedsession.stores._redis_url import redact

        return f"Redis at {redact(redis_url)}"
    return f"the SQLite file {sqlite_path or 'in the instance folder'}"


def create_app(instance: str | None = None) -> Flask:
    """The shop, configured from the environment.

    ``SESSION_REDIS_URL`` selects the Redis store; otherwise the SQLite file at
    ``SHOP_SQLITE_PATH`` (default: the app's instance folder) is shared.
    """
    app = Flask(__name__)
    name = instance or os.environ.get("SHOP_INSTANCE", "A")
    app.config["SECRET_KEY"] = os.environ.get("SHOP_SECRET_KEY", "demo-only-secret")
    redis_url = os.environ.get("SESSION_REDIS_URL")
    where = store_description(redis_url, os.environ.get("SHOP_SQLITE_PATH"))
    if redis_url:
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis_url)
    else:
        app.config.update(
            SESSION_TYPE="sqlite", SESSION_SQLITE_PATH=os.environ.get("SHOP_SQLITE_PATH")
        )
    Session(app)

    @app.after_request
    def tag(response: Response) -> Response:
        response.headers["X-Instance"] = name
        return response

    def changed(what: str) -> None:
        # Kept in the session: the page after the redirect may come from the other instance.
        session["changed"] = {"instance": name, "what": what}

    @app.get("/")
    def index() -> str:
        return render_template_string(
            PAGE,
            icon=ICON,
            instance=name,
            pid=os.getpid(),
            changed=session.get("changed"),
            notice=session.pop("notice", None),
            store=where,
            user=session.get("user"),
            cart=session.get("cart", []),
            products=PRODUCTS,
        )

    @app.get("/api/state")
    def state() -> dict[str, object]:
        return {
            "instance": name,
            "user": session.get("user"),
            "cart": session.get("cart", []),
            "changed": session.get("changed"),
            "store": where,
        }

    @app.post("/login")
    def login() -> BaseResponse:
        user = request.form.get("user", "").strip()[:40]
        if user:
            session.bind_user(user)  # new ID at login
            session["user"] = user
            changed(f"logged in as {user}")
        return redirect(url_for("index"))

    @app.post("/add/<sku>")
    def add(sku: str) -> BaseResponse:
        if sku in PRODUCTS:
            session.setdefault("cart", []).append(sku)
            changed(f"added {PRODUCTS[sku]}")
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> BaseResponse:
        session.destroy()
        # A new session, just for the confirmation on the next page.
        session["notice"] = f"You are logged out (by instance {name}); your cart is gone."
        return redirect(url_for("index"))

    return app
