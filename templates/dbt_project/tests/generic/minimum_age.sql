{#
    Birth dates of people younger than `years` today (in UTC). Ages are compared by adding the years
    to the birth date, which handles leap days, rather than by dividing a day count by 365.
#}
{% test minimum_age(model, column_name, years) %}

select *
from {{ model }}
where {{ dbt.dateadd('year', years, column_name) }}
    > cast({{ to_utc_timestamp(dbt.current_timestamp()) }} as date)

{% endtest %}
