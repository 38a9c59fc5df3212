-- One row per user with their order history summed up; users without orders get zeros and null
-- dates, so that marts can join it to users without losing anyone.

with users as (

    select user_id from {{ ref('stg_users') }}

),

order_facts as (

    select * from {{ ref('int_order_facts') }}

),

orders_per_user as (

    select
        user_id,
        count(*) as total_orders,
        count(case when is_revenue then order_id end) as revenue_orders,
        count(case when status = 'cancelled' then order_id end) as cancelled_orders,
        count(case when status = 'refunded' then order_id end) as refunded_orders,
        sum(case when is_revenue then amount_usd else 0 end) as revenue_usd,
        sum(case when is_revenue then discount_usd else 0 end) as discount_usd,
        -- DuckDB sums integers into a 128-bit HUGEINT, which many clients cannot read
        cast(sum(case when is_revenue then quantity else 0 end) as {{ dbt.type_bigint() }}) as items_purchased,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        min(case when is_revenue then ordered_at end) as first_revenue_order_at

    from order_facts
    group by user_id

),

user_orders as (

    select
        users.user_id,
        coalesce(orders_per_user.total_orders, 0) as total_orders,
        coalesce(orders_per_user.revenue_orders, 0) as revenue_orders,
        coalesce(orders_per_user.cancelled_orders, 0) as cancelled_orders,
        coalesce(orders_per_user.refunded_orders, 0) as refunded_orders,
        coalesce(orders_per_user.revenue_usd, 0) as revenue_usd,
        coalesce(orders_per_user.discount_usd, 0) as discount_usd,
        coalesce(orders_per_user.items_purchased, 0) as items_purchased,
        orders_per_user.first_order_at,
        orders_per_user.last_order_at,
        orders_per_user.first_revenue_order_at

    from users
    left join orders_per_user
        on users.user_id = orders_per_user.user_id

)

select * from user_orders
