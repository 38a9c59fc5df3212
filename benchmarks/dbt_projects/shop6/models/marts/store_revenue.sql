with

orders as (

    select * from {{ ref('orders') }}

),

stores as (

    select * from {{ ref('stg_stores') }}

),

monthly as (

    select
        store_id,
        order_month,
        count(*) as orders,
        count(distinct customer_id) as customers,
        sum(amount_paid) as revenue,
        sum(case when is_returned then order_total else 0 end) as returned_value

    from orders

    group by store_id, order_month

)

select
    stores.store_id,
    stores.store_name,
    stores.city,
    monthly.order_month,
    monthly.orders,
    monthly.customers,
    monthly.revenue,
    monthly.returned_value,
    sum(monthly.revenue) over (
        partition by stores.store_id order by monthly.order_month
    ) as cumulative_revenue

from stores

inner join monthly
    on stores.store_id = monthly.store_id
