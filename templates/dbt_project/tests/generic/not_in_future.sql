{#
    For the UTC timestamps made by to_utc_timestamp: "now" has to be taken in UTC as well, or a
    machine east of Greenwich would see recent rows as being in the future.
#}
{% test not_in_future(model, column_name) %}

select *
from {{ model }}
where {{ column_name }} > {{ to_utc_timestamp(dbt.current_timestamp()) }}

{% endtest %}
