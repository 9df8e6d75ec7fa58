"""``{% home_section section %}``: render one of Home's sections (portal/home.py) with its own variables."""

from __future__ import annotations

from typing import Any

from django import template
from django.template import Engine
from django.template.context import Context
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def home_section(context: Context, section: dict[str, Any]) -> SafeString:
    # Like {% include %}, but with variables whose names the page cannot know in advance.
    engine = context.template.engine if context.template is not None else Engine.get_default()
    section_template = engine.get_template(section["template"])
    with context.push(section["context"]):
        return section_template.render(context)
