-- The marts add up to the same totals as the data they come from: a day missing from the
-- daily_kpis calendar, or a join that duplicates or drops users in user_metrics, shows up here.

with staging_totals as (

    select
        (select count(*) from {{ ref('stg_users') }}) as new_users,
        (select count(*) from {{ ref('stg_events') }}) as events,
        (select count(*) from {{ ref('stg_orders') }}) as orders,
        (select coalesce(sum(amount_usd), 0) from {{ ref('int_order_facts') }} where is_revenue) as revenue_usd

),

daily_kpis_totals as (

    select
        coalesce(sum(new_users), 0) as new_users,
        coalesce(sum(events), 0) as events,
        coalesce(sum(orders), 0) as orders,
        coalesce(sum(revenue_usd), 0) as revenue_usd

    from {{ ref('daily_kpis') }}

),

user_metrics_totals as (

    select
        count(*) as new_users,
        coalesce(sum(total_events), 0) as events,
        coalesce(sum(total_orders), 0) as orders,
        coalesce(sum(lifetime_value_usd), 0) as revenue_usd

    from {{ ref('user_metrics') }}

),

mismatches as (

    select 'daily_kpis' as mart, daily_kpis_totals.*
    from daily_kpis_totals
    cross join staging_totals
    where daily_kpis_totals.new_users <> staging_totals.new_users
        or daily_kpis_totals.events <> staging_totals.events
        or daily_kpis_totals.orders <> staging_totals.orders
        or daily_kpis_totals.revenue_usd <> staging_totals.revenue_usd

    union all

    select 'user_metrics' as mart, user_metrics_totals.*
    from user_metrics_totals
    cross join staging_totals
    where user_metrics_totals.new_users <> staging_totals.new_users
        or user_metrics_totals.events <> staging_totals.events
        or user_metrics_totals.orders <> staging_totals.orders
        or user_metrics_totals.revenue_usd <> staging_totals.revenue_usd

)

select * from mismatches
