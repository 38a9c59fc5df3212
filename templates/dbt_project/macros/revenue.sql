{#
    The one place that decides which orders are revenue (the statuses are the `revenue_statuses`
    var in dbt_project.yml) and how amounts in several currencies become comparable.
#}
{% macro is_revenue_order(status_column) -%}
    {{ status_column }} in (
        {%- for status in var('revenue_statuses') -%}
            '{{ status }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    )
{%- endmacro %}

{% macro to_usd(amount_column, currency_column) -%}
    cast(round({{ amount_column }} * case {{ currency_column }}
        {%- for currency, rate in var('usd_per_currency_unit') | dictsort %}
            when '{{ currency }}' then {{ rate }}
        {%- endfor %}
        end, 2) as numeric(18, 2))
{%- endmacro %}
