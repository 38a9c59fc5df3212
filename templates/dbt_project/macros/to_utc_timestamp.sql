{#
    The loader writes timestamps with time zone. A bare cast to `timestamp` would convert them to the
    session's time zone, which for DuckDB is the machine's local zone, so the same data would fall on
    different days on different laptops. `at time zone 'UTC'` gives the UTC wall-clock time instead,
    on DuckDB and PostgreSQL alike; other warehouses can override `<adapter>__to_utc_timestamp`.
#}
{% macro to_utc_timestamp(column) -%}
    {{ return(adapter.dispatch('to_utc_timestamp')(column)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
    cast(({{ column }}) at time zone 'UTC' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- Spark has no `at time zone`: sbdk runs its sessions in UTC (spark.sql.session.timeZone), where
    a timestamp is the UTC wall-clock time already. -#}
{% macro spark__to_utc_timestamp(column) -%}
    cast({{ column }} as {{ dbt.type_timestamp() }})
{%- endmacro %}
