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
from flask import session
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from sharedsession.flask import Session

PRODUCTS = {"apple": "Apple", "bread": "Bread", "cheese": "Cheese", "dates": "Dates"}

PAGE = """<!doctype html>
<title>sharedsession shop</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  .instance { padding: .5em 1em; color: #fff; background: {{ colour }}; border-radius: 4px; }
  button { margin: .2em; }
</style>
<p class="instance">Served by instance <b>{{ instance }}</b> (process {{ pid }})</p>
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


def create_app(instance: str | None = None) -> Flask:
    """The shop, configured from the environment.

    ``SESSION_REDIS_URL`` selects the Redis store; otherwise the SQLite file at
    ``SHOP_SQLITE_PATH`` (default: the app's instance folder) is shared.
    """
    app = Flask(__name__)
    name = instance or os.environ.get("SHOP_INSTANCE", "A")
    app.config["SECRET_KEY"] = os.environ.get("SHOP_SECRET_KEY", "demo-only-secret")
    redis_url = os.environ.get("SESSION_REDIS_URL")
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

    @app.get("/")
    def index() -> str:
        return render_template_string(
            PAGE,
            instance=name,
            pid=os.getpid(),
            colour="#2a6f97" if name == "A" else "#9a3b3b",
            user=session.get("user"),
            cart=session.get("cart", []),
            products=PRODUCTS,
        )

    @app.get("/api/state")
    def state() -> dict[str, object]:
        return {"instance": name, "user": session.get("user"), "cart": session.get("cart", [])}

    @app.post("/login")
    def login() -> BaseResponse:
        user = request.form.get("user", "").strip()[:40]
        if user:
            session.bind_user(user)  # type: ignore[attr-defined]  # new ID at login
            session["user"] = user
        return redirect(url_for("index"))

    @app.post("/add/<sku>")
    def add(sku: str) -> BaseResponse:
        if sku in PRODUCTS:
            session.setdefault("cart", []).append(sku)
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> BaseResponse:
        session.destroy()  # type: ignore[attr-defined]
        return redirect(url_for("index"))

    return app
