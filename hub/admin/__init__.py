"""The admin page (Jinja2 + htmx) at /admin/; its JSON twin for automation is hub.api.admin_routes."""
